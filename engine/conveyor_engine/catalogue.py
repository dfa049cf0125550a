"""Pools' catalogues: the task types each pool's workers advertise (issue 11 item 2).

A worker publishes what its registry has (:meth:`~.tasktypes.registry.Registry.describe`:
name, params JSON Schema, package, version) for its pool when it starts, refreshes it while
it runs and withdraws it on a clean shutdown; a worker that dies stops refreshing and its
advertisement expires. Each publication also becomes the pool's *last known* catalogue (no
expiry), so a pool scaled to zero that has advertised before still compiles against what it
served. Redis holds it all (keys in :mod:`conveyor_engine.keys`): it is rebuilt by the
workers themselves within one refresh, so PostgreSQL's durability is not needed.

Layout per pool: a sorted set of advertising workers scored by the Unix time their entry
expires, one JSON string per worker (with a Redis TTL as well, so nothing outlives a dead
worker), and the last known JSON. Readers drop expired members as they read.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from .compiler.pools import PoolFacts
from .keys import Keys

#: The most task types a catalogue keeps (a registry with more is cut, by name): a bound on
#: what one Redis value and the WorkerPool's status hold.
MAX_TYPES = 256


@dataclass(frozen=True, slots=True)
class AdvertisedType:
    """One task type a pool advertises: its ``name``, its params' JSON Schema
    (``params_schema``, pydantic's, by alias, with ``$defs``), and the ``package``
    (distribution) and ``version`` that provide it (None for a type registered in code)."""

    name: str
    params_schema: Mapping[str, Any]
    package: str | None = None
    version: str | None = None

    @classmethod
    def from_description(cls, raw: Mapping[str, Any]) -> AdvertisedType:
        """From one item of ``Registry.describe()`` (keys ``name``, ``paramsSchema``,
        ``package``, ``version``)."""
        return cls(str(raw["name"]), dict(raw.get("paramsSchema") or {}),
                   raw.get("package"), raw.get("version"))

    def to_json(self) -> dict[str, Any]:
        """The wire form (the same keys as ``Registry.describe()``, outputs left out)."""
        return {"name": self.name, "paramsSchema": dict(self.params_schema),
                "package": self.package, "version": self.version}


@dataclass(frozen=True, slots=True)
class PoolCatalogue:
    """What a pool serves, as read at one moment.

    ``workers``: how many workers advertise now (live); ``types``: the union of their types
    by name (empty when none is live); ``last_known``: the types of the last advertisement
    ever made for the pool (empty when it never advertised).
    """

    pool: str
    workers: int
    types: tuple[AdvertisedType, ...]
    last_known: tuple[AdvertisedType, ...] = ()

    @property
    def effective(self) -> tuple[AdvertisedType, ...]:
        """What to compile against: the live workers' types, else the last known ones."""
        return self.types if self.workers else self.last_known

    def facts(self, *, settled: bool, secrets: Iterable[str] = ()) -> PoolFacts:
        """What the compiler is told of this pool: the :attr:`effective` types' params
        schemas, whether the pool is ``settled`` (the caller's rule: the operator's
        ``pools/catalogue.py``) and the Secrets it mounts."""
        return PoolFacts(types={t.name: t.params_schema for t in self.effective},
                         settled=settled, secrets=frozenset(secrets))


def catalogue_json(described: Iterable[Mapping[str, Any]]) -> bytes:
    """A registry's ``describe()`` as the stored JSON: at most :data:`MAX_TYPES` types, by
    name, outputs schemas left out (the compiler needs only the params)."""
    types = sorted((AdvertisedType.from_description(d) for d in described),
                   key=lambda t: t.name)[:MAX_TYPES]
    return orjson.dumps([t.to_json() for t in types])


def _parse(raw: bytes | str | None) -> tuple[AdvertisedType, ...]:
    if not raw:
        return ()
    try:
        return tuple(AdvertisedType.from_description(d) for d in orjson.loads(raw))
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return ()  # a damaged entry advertises nothing; the next refresh rewrites it


def merge(advertised: Iterable[tuple[AdvertisedType, ...]]) -> tuple[AdvertisedType, ...]:
    """The union of several workers' types by name (the first seen wins a name: during a
    rollout two versions may both be live; either one's schema is a real worker's)."""
    seen: dict[str, AdvertisedType] = {}
    for types in advertised:
        for advertised_type in types:
            seen.setdefault(advertised_type.name, advertised_type)
    return tuple(seen[name] for name in sorted(seen))


class Catalogues:
    """Publishing and reading pools' catalogues in Redis. Methods raise redis-py's errors
    when Redis cannot be reached."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    async def publish(self, pool: str, worker: str, payload: bytes, *,
                      ttl_seconds: float) -> None:
        """Advertise ``payload`` (:func:`catalogue_json`) for ``worker`` of ``pool`` for
        ``ttl_seconds`` (call again before it passes to stay listed), and make it the
        pool's last known catalogue. One transaction: readers never see half of it."""
        ttl_ms = max(int(ttl_seconds * 1000), 1)
        expires = time.time() + ttl_seconds
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self._keys.catalogue_worker(pool, worker), payload, px=ttl_ms)
            pipe.zadd(self._keys.catalogue_workers(pool), {worker: expires})
            pipe.set(self._keys.catalogue_last(pool), payload)
            await pipe.execute()

    async def withdraw(self, pool: str, worker: str) -> None:
        """Stop advertising for ``worker`` (a clean shutdown); the last known stays."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._keys.catalogue_worker(pool, worker))
            pipe.zrem(self._keys.catalogue_workers(pool), worker)
            await pipe.execute()

    async def read(self, pool: str) -> PoolCatalogue:
        """The catalogue of ``pool`` now: live workers, their types, the last known."""
        index = self._keys.catalogue_workers(pool)
        now = time.time()
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(index, "-inf", now)
            pipe.zrangebyscore(index, now, "+inf")
            pipe.get(self._keys.catalogue_last(pool))
            _, members, last = await pipe.execute()
        workers = [m.decode() if isinstance(m, bytes) else str(m) for m in members]
        values = (await self._redis.mget([self._keys.catalogue_worker(pool, w)
                                          for w in workers])) if workers else []
        # A member whose value expired already (its TTL passed first) is not live.
        live = [_parse(v) for v in values if v]
        return PoolCatalogue(pool, len(live), merge(live), _parse(last))
