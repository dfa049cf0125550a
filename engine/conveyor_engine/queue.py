"""Task dispatch on Redis Streams: one stream and one consumer group per worker pool.

Semantics follow the Redis Streams commands: ``XREADGROUP`` claims new entries for a
consumer (they enter the group's pending entries list, PEL); ``XACK`` removes them from the
PEL once the outcome is committed in PostgreSQL; ``XCLAIM ... JUSTID`` by the owner resets an
entry's idle time, which is how a running task's lease is renewed; an entry idle for longer
than the lease belongs to a dead worker and is taken over with ``XCLAIM`` (after reading its
delivery count from ``XPENDING``). Acknowledged entries are deleted (``XDEL``), so the
stream holds only work not yet done: ``XLEN`` minus the PEL size is the backlog.

Priorities: each pool has one stream per band (:mod:`conveyor_engine.priorities`), all with
the pool's hash tag. An entry's id as the rest of the engine sees it (``Delivery.message_id``)
is the stream's id for the ``normal`` band and ``<band>/<stream id>`` for the others, since
ids of different streams may be equal; only this module splits them (:func:`split_id`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import ResponseError

from .keys import Keys
from .priorities import BANDS, Band, band_of, blocking_plan, read_order
from .store.records import ReadyTask, TaskRef

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to this consumer: its entry id and the attempt it carries."""

    message_id: str
    ref: TaskRef
    #: The priority it was dispatched with (0 unless its execution has one).
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Backlog:
    """Work of one pool: ``queued`` entries not yet delivered, ``in_flight`` claimed, unacked."""

    queued: int
    in_flight: int


def encode(ref: TaskRef, priority: int = 0) -> dict[str, str]:
    """Stream entry fields for one task attempt (short names keep entries small); the
    priority only when it is not 0."""
    fields = {"e": ref.execution_id, "t": ref.task, "a": str(ref.attempt)}
    if priority:
        fields["p"] = str(priority)
    return fields


def entry_id(band: Band | str, stream_id: str) -> str:
    """The id the engine knows an entry of ``band``'s stream by (see the module doc)."""
    return stream_id if band == Band.NORMAL else f"{band}/{stream_id}"


def split_id(message_id: str) -> tuple[Band, str]:
    """``(band, stream id)`` of an id made by :func:`entry_id`."""
    band, sep, stream_id = message_id.partition("/")
    return (Band(band), stream_id) if sep else (Band.NORMAL, message_id)


def by_band(message_ids: list[str]) -> dict[Band, list[str]]:
    """Stream ids grouped by band, in the given order."""
    grouped: dict[Band, list[str]] = {}
    for message_id in message_ids:
        band, stream_id = split_id(message_id)
        grouped.setdefault(band, []).append(stream_id)
    return grouped


def decode(message_id: str, fields: dict[str, str]) -> Delivery:
    """Inverse of :func:`encode`; raises ``KeyError``/``ValueError`` on a malformed entry.

    The execution id must be a UUID and the attempt a positive 32-bit integer (the
    columns' types), so a malformed entry is caught here rather than failing the claim of
    the whole batch it arrived in.
    """
    execution_id = str(uuid.UUID(fields["e"]))
    attempt = int(fields["a"])
    if not 1 <= attempt <= 2**31 - 1:
        raise ValueError(f"attempt {attempt} out of range")
    if not fields["t"]:
        raise ValueError("empty task name")
    return Delivery(message_id, TaskRef(execution_id, fields["t"], attempt),
                    int(fields.get("p", 0)))


# A worker's ordered read of its pool's bands in one round trip: XREADGROUP on each stream
# in turn (KEYS, in read order), each topping up what the previous ones lacked, stopping once
# ARGV[3] entries were taken. Non-blocking XREADGROUP may run in a script; a missing group
# raises NOGROUP as the command itself would. The bands share the pool's hash tag, so the
# keys are in one slot on a Redis Cluster.
_READ_BANDS = """
local want = tonumber(ARGV[3])
local out = {}
for _, key in ipairs(KEYS) do
  if want <= 0 then break end
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', want,
                           'STREAMS', key, '>')
  if reply then
    local entries = reply[1][2]
    out[#out + 1] = {key, entries}
    want = want - #entries
  end
end
return out
"""


class Queue:
    """Stream operations for all pools under one key prefix. ``redis`` decodes responses."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys
        self._read_bands = redis.register_script(_READ_BANDS)

    async def _grouped(self, pool: str, call: Callable[[], Awaitable[T]]) -> T:
        """Run ``call``; if the group is gone (``NOGROUP``: Redis lost its data), recreate it
        and run ``call`` once more. Ready tasks are then re-dispatched from PostgreSQL."""
        try:
            return await call()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
        await self.ensure_group(pool)
        return await call()

    async def ensure_group(self, pool: str) -> None:
        """Create ``pool``'s stream and consumer group if missing (``XGROUP CREATE MKSTREAM``).

        The group starts at id ``0`` so entries added before it existed are still delivered.
        Done for the stream of every band.
        """
        for band in BANDS:
            try:
                await self._redis.xgroup_create(
                    self._keys.stream(pool, band), self._keys.group(pool), id="0",
                    mkstream=True)
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    def add_dispatch(self, pipe: Pipeline, ready: list[ReadyTask]) -> None:
        """Queue ``XADD`` of each ready task onto its pool's stream of its priority's band
        in ``pipe``."""
        for item in ready:
            pipe.xadd(self._keys.stream(item.pool, band_of(item.priority)),
                      encode(item.ref, item.priority))

    def add_ack(self, pipe: Pipeline, pool: str, message_ids: list[str]) -> None:
        """Queue ``XACK`` then ``XDEL`` of entries whose outcome is committed."""
        for band, ids in by_band(message_ids).items():
            pipe.xack(self._keys.stream(pool, band), self._keys.group(pool), *ids)
            pipe.xdel(self._keys.stream(pool, band), *ids)

    async def dispatch(self, ready: list[ReadyTask]) -> None:
        """``XADD`` ready tasks now (one pipelined round trip)."""
        if ready:
            async with self._redis.pipeline(transaction=False) as pipe:
                self.add_dispatch(pipe, ready)
                await pipe.execute()

    async def read(
        self, pool: str, consumer: str, *, count: int, block_ms: int, tick: int = 0
    ) -> tuple[list[Delivery], list[str]]:
        """Claim up to ``count`` new entries (``XREADGROUP ... >``) of ``pool``'s bands.

        The ``tick``-th read of a worker takes from the bands in the order of
        :func:`~conveyor_engine.priorities.read_order`, each band topping up what the
        previous ones lacked; when all are empty it blocks up to ``block_ms`` on every band
        at once (never for more than ``count`` entries in all).
        Returns ``(deliveries, malformed entry ids)``; malformed entries should be acked.
        """
        order = read_order(tick)
        deliveries: list[Delivery] = []
        malformed: list[str] = []
        if count <= 0:
            return deliveries, malformed
        # One round trip however many bands are read (a script): with most work in one
        # band, reading the empty ones first must not cost a round trip each.
        reply = await self._grouped(pool, lambda: self._read_bands(
            keys=[self._keys.stream(pool, band) for band in order],
            args=[self._keys.group(pool), consumer, count]))
        for stream, entries in reply or []:
            found, bad = _split([(entry[0], _fields(entry[1] if len(entry) > 1 else None))
                                 for entry in entries],
                                self._band_of_stream(pool, stream))
            deliveries += found
            malformed += bad
        if deliveries or malformed or block_ms <= 0:
            return deliveries, malformed
        bands, each = blocking_plan(order, count)
        reply = await self._grouped(pool, lambda: self._redis.xreadgroup(
            self._keys.group(pool), consumer, {self._keys.stream(pool, b): ">" for b in bands},
            count=each, block=block_ms))
        for stream, entries in reply or []:
            found, bad = _split(entries, self._band_of_stream(pool, stream))
            deliveries += found
            malformed += bad
        return deliveries, malformed

    def _band_of_stream(self, pool: str, stream: str | bytes) -> Band:
        name = stream.decode() if isinstance(stream, bytes) else stream
        for band in BANDS:
            if self._keys.stream(pool, band) == name:
                return band
        raise ValueError(f"not a stream of pool {pool!r}: {name!r}")

    async def renew(self, pool: str, consumer: str, message_ids: list[str]) -> None:
        """Renew the lease on entries this consumer holds (``XCLAIM <id>... JUSTID``, idle 0).

        ``JUSTID`` leaves the delivery count alone, so renewals never look like redeliveries.
        """
        for band, ids in by_band(message_ids).items():
            await self._grouped(pool, lambda band=band, ids=ids: self._redis.xclaim(
                self._keys.stream(pool, band), self._keys.group(pool), consumer, 0, ids,
                justid=True,
            ))

    async def expired(
        self, pool: str, *, min_idle_ms: int, count: int
    ) -> list[tuple[str, str, int]]:
        """Pending entries idle for at least ``min_idle_ms``, at most ``count``, higher bands
        first: ``[(entry id, consumer holding it, deliveries)]``."""
        found: list[tuple[str, str, int]] = []
        for band in BANDS:
            if len(found) >= count:
                break
            want = count - len(found)
            rows = await self._grouped(pool, lambda band=band, want=want:
                                       self._redis.xpending_range(
                self._keys.stream(pool, band), self._keys.group(pool), min="-", max="+",
                count=want, idle=min_idle_ms,
            ))
            found += [(entry_id(band, row["message_id"]), row["consumer"],
                       int(row["times_delivered"])) for row in rows]
        return found

    async def take_over(
        self, pool: str, consumer: str, message_ids: list[str], *, min_idle_ms: int
    ) -> tuple[list[Delivery], list[str]]:
        """``XCLAIM`` expired entries for ``consumer``; only those still idle are returned.

        Re-checking ``min_idle_ms`` inside ``XCLAIM`` means a worker that renewed its lease
        in the meantime keeps its entry: work is never taken from a live worker.
        """
        deliveries: list[Delivery] = []
        malformed: list[str] = []
        for band, ids in by_band(message_ids).items():
            entries = await self._redis.xclaim(
                self._keys.stream(pool, band), self._keys.group(pool), consumer, min_idle_ms,
                ids)
            found, bad = _split(entries, band)
            deliveries += found
            malformed += bad
        return deliveries, malformed

    async def dead_letter(self, pool: str, message_id: str, ref: TaskRef, reason: str) -> None:
        """Copy an entry to the pool's dead-letter stream with ``reason``, then ack it."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self.add_dead_letter(pipe, pool, message_id, ref, reason)
            self.add_ack(pipe, pool, [message_id])
            await pipe.execute()

    def add_dead_letter(self, pipe: Pipeline, pool: str, message_id: str, ref: TaskRef,
                        reason: str) -> None:
        """Queue the copy of entry ``message_id`` (carrying ``ref``) to the pool's
        dead-letter stream (one for all bands) with ``reason`` in ``pipe`` (no ack)."""
        pipe.xadd(self._keys.dead_letter(pool), {**encode(ref), "reason": reason,
                                                  "id": message_id})

    async def backlog(self, pool: str) -> Backlog:
        """Queued (undelivered) and in-flight (pending) entry counts of ``pool``, summed over
        its bands (one pipelined round trip)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for band in BANDS:
                pipe.xlen(self._keys.stream(pool, band))
                pipe.xpending(self._keys.stream(pool, band), self._keys.group(pool))
            replies = await pipe.execute(raise_on_error=False)
        queued = in_flight = 0
        for length, pending in zip(replies[0::2], replies[1::2], strict=True):
            if isinstance(length, Exception) or isinstance(pending, Exception):
                if isinstance(length, ResponseError) or isinstance(pending, ResponseError):
                    continue  # no stream or group yet: nothing waiting in this band
                raise length if isinstance(length, Exception) else pending
            pending_count = int(pending["pending"]) if pending else 0
            queued += max(0, int(length) - pending_count)
            in_flight += pending_count
        return Backlog(queued, in_flight)

    async def in_flight_by_consumer(self, pool: str) -> dict[str, int]:
        """Unacknowledged entries per consumer (``XPENDING`` summary form), all bands."""
        counts: dict[str, int] = {}
        for band in BANDS:
            try:
                summary = await self._redis.xpending(self._keys.stream(pool, band),
                                                     self._keys.group(pool))
            except ResponseError:
                continue
            for consumer in summary.get("consumers") or []:
                counts[consumer["name"]] = counts.get(consumer["name"], 0) + int(
                    consumer["pending"])
        return counts


def _fields(flat: list | None) -> dict[str, str]:
    """An entry's fields from a script's reply (``[f1, v1, f2, v2, ...]``, or nil for an
    entry deleted while pending) as redis-py gives them from ``XREADGROUP`` (a dict)."""
    flat = flat or []
    return dict(zip(flat[::2], flat[1::2], strict=True))


def _split(entries: list, band: Band = Band.NORMAL) -> tuple[list[Delivery], list[str]]:
    deliveries, malformed = [], []
    for stream_id, fields in entries:
        message_id = entry_id(band, stream_id)
        if not fields:  # deleted while pending: XCLAIM/XREADGROUP return an empty body
            malformed.append(message_id)
            continue
        try:
            deliveries.append(decode(message_id, fields))
        except (KeyError, ValueError):
            malformed.append(message_id)
    return deliveries, malformed
