"""Pools' catalogues: the task types each pool's workers advertise, and the names (never
the values) of the Secrets each has mounted (issue 11 item 2).

A worker publishes what its registry has (:meth:`~.tasktypes.registry.Registry.describe`:
name, params JSON Schema, package, version) for its pool when it starts, refreshes it while
it runs and withdraws it on a clean shutdown; a worker that dies stops refreshing and its
advertisement expires. Each publication also becomes the pool's *last known* catalogue (no
expiry), so a pool scaled to zero that has advertised before still compiles against what it
served. Redis holds it all (keys in :mod:`conveyor_engine.keys`): it is rebuilt by the
workers themselves within one refresh, so PostgreSQL's durability is not needed.

Layout per pool: a sorted set of advertising workers scored by the Unix time their entry
expires, one JSON string per worker (with a Redis TTL as well, so nothing outlives a dead
worker), and the last known JSON. Readers drop expired members as they read. The JSON is
``{"types": [...], "secrets": ["payments", ...]}``; a bare list of types (what workers
before the Secrets' names wrote) advertises types and says nothing of Secrets.
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
    ever made for the pool (empty when it never advertised). ``secrets``: the names of the
    Secrets *every* live worker has mounted (the intersection), ``last_known_secrets``
    those of the last advertisement; None where an advertisement did not say (an older
    worker).
    """

    pool: str
    workers: int
    types: tuple[AdvertisedType, ...]
    last_known: tuple[AdvertisedType, ...] = ()
    secrets: frozenset[str] | None = frozenset()
    last_known_secrets: frozenset[str] | None = frozenset()

    @property
    def effective(self) -> tuple[AdvertisedType, ...]:
        """What to compile against: the live workers' types, else the last known ones."""
        return self.types if self.workers else self.last_known

    @property
    def mounted(self) -> frozenset[str] | None:
        """The Secrets to compile against: those every live worker mounts, else those of
        the last advertisement (None: not said)."""
        return self.secrets if self.workers else self.last_known_secrets

    def facts(self, *, settled: bool, secrets: Iterable[str] = ()) -> PoolFacts:
        """What the compiler is told of this pool: the :attr:`effective` types' params
        schemas, whether the pool is ``settled`` (the caller's rule: the operator's
        ``pools/catalogue.py``), the Secrets its spec lists (``secrets``) and those its
        workers have :attr:`mounted`."""
        return PoolFacts(types={t.name: t.params_schema for t in self.effective},
                         settled=settled, secrets=frozenset(secrets), mounted=self.mounted)


#: The most Secret names a catalogue keeps (by name).
MAX_SECRETS = 256


def catalogue_json(described: Iterable[Mapping[str, Any]], secrets: Iterable[str] = ()) -> bytes:
    """A registry's ``describe()`` and the names of the mounted ``secrets`` as the stored
    JSON: at most :data:`MAX_TYPES` types and :data:`MAX_SECRETS` names, by name, outputs
    schemas left out (the compiler needs only the params). Never a Secret's value."""
    types = sorted((AdvertisedType.from_description(d) for d in described),
                   key=lambda t: t.name)[:MAX_TYPES]
    return orjson.dumps({"types": [t.to_json() for t in types],
                         "secrets": sorted(set(secrets))[:MAX_SECRETS]})


Parsed = tuple[tuple[AdvertisedType, ...], frozenset[str] | None]


def _parse(raw: bytes | str | None) -> Parsed:
    """``(types, secret names)`` of one stored JSON (names None: not said)."""
    if not raw:
        return (), frozenset()
    try:
        data = orjson.loads(raw)
        if isinstance(data, list):  # an older worker's: types only
            return tuple(AdvertisedType.from_description(d) for d in data), None
        secrets = data.get("secrets")
        return (tuple(AdvertisedType.from_description(d) for d in data["types"]),
                None if secrets is None else frozenset(map(str, secrets)))
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError):
        return (), frozenset()  # a damaged entry advertises nothing; the next refresh fixes it


def common_secrets(advertised: Iterable[frozenset[str] | None]) -> frozenset[str] | None:
    """The Secret names every one of ``advertised`` (one per live worker) lists: a Secret
    some worker lacks is not mounted yet for the pool. None when any worker did not say."""
    common: frozenset[str] | None = None
    for names in advertised:
        if names is None:
            return None
        common = names if common is None else common & names
    return common if common is not None else frozenset()


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
        known_types, known_secrets = _parse(last)
        return PoolCatalogue(pool, len(live), merge(types for types, _ in live), known_types,
                             common_secrets(secrets for _, secrets in live), known_secrets)
