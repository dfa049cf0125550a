"""Task dispatch on Redis Streams: one stream and one consumer group per worker pool.

Semantics follow the Redis Streams commands: ``XREADGROUP`` claims new entries for a
consumer (they enter the group's pending entries list, PEL); ``XACK`` removes them from the
PEL once the outcome is committed in PostgreSQL; ``XCLAIM ... JUSTID`` by the owner resets an
entry's idle time, which is how a running task's lease is renewed; an entry idle for longer
than the lease belongs to a dead worker and is taken over with ``XCLAIM`` (after reading its
delivery count from ``XPENDING``). Acknowledged entries are deleted (``XDEL``), so the
stream holds only work not yet done: ``XLEN`` minus the PEL size is the backlog.
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
from .store.records import ReadyTask, TaskRef

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One stream entry handed to this consumer: its entry id and the attempt it carries."""

    message_id: str
    ref: TaskRef


@dataclass(frozen=True, slots=True)
class Backlog:
    """Work of one pool: ``queued`` entries not yet delivered, ``in_flight`` claimed, unacked."""

    queued: int
    in_flight: int


def encode(ref: TaskRef) -> dict[str, str]:
    """Stream entry fields for one task attempt (short names keep entries small)."""
    return {"e": ref.execution_id, "t": ref.task, "a": str(ref.attempt)}


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
    return Delivery(message_id, TaskRef(execution_id, fields["t"], attempt))


class Queue:
    """Stream operations for all pools under one key prefix. ``redis`` decodes responses."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

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
        """
        try:
            await self._redis.xgroup_create(
                self._keys.stream(pool), self._keys.group(pool), id="0", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def add_dispatch(self, pipe: Pipeline, ready: list[ReadyTask]) -> None:
        """Queue ``XADD`` of each ready task onto its pool's stream in ``pipe``."""
        for item in ready:
            pipe.xadd(self._keys.stream(item.pool), encode(item.ref))

    def add_ack(self, pipe: Pipeline, pool: str, message_ids: list[str]) -> None:
        """Queue ``XACK`` then ``XDEL`` of entries whose outcome is committed."""
        if message_ids:
            pipe.xack(self._keys.stream(pool), self._keys.group(pool), *message_ids)
            pipe.xdel(self._keys.stream(pool), *message_ids)

    async def dispatch(self, ready: list[ReadyTask]) -> None:
        """``XADD`` ready tasks now (one pipelined round trip)."""
        if ready:
            async with self._redis.pipeline(transaction=False) as pipe:
                self.add_dispatch(pipe, ready)
                await pipe.execute()

    async def read(
        self, pool: str, consumer: str, *, count: int, block_ms: int
    ) -> tuple[list[Delivery], list[str]]:
        """Claim up to ``count`` new entries (``XREADGROUP ... >``), blocking up to ``block_ms``.

        Returns ``(deliveries, malformed entry ids)``; malformed entries should be acked.
        """
        reply = await self._grouped(pool, lambda: self._redis.xreadgroup(
            self._keys.group(pool), consumer, {self._keys.stream(pool): ">"},
            count=count, block=block_ms,
        ))
        return _split(reply[0][1] if reply else [])

    async def renew(self, pool: str, consumer: str, message_ids: list[str]) -> None:
        """Renew the lease on entries this consumer holds (``XCLAIM <id>... JUSTID``, idle 0).

        ``JUSTID`` leaves the delivery count alone, so renewals never look like redeliveries.
        """
        if message_ids:
            await self._grouped(pool, lambda: self._redis.xclaim(
                self._keys.stream(pool), self._keys.group(pool), consumer, 0, message_ids,
                justid=True,
            ))

    async def expired(
        self, pool: str, *, min_idle_ms: int, count: int
    ) -> list[tuple[str, str, int]]:
        """Pending entries idle for at least ``min_idle_ms``:
        ``[(entry id, consumer holding it, deliveries)]``."""
        rows = await self._grouped(pool, lambda: self._redis.xpending_range(
            self._keys.stream(pool), self._keys.group(pool), min="-", max="+",
            count=count, idle=min_idle_ms,
        ))
        return [(row["message_id"], row["consumer"], int(row["times_delivered"]))
                for row in rows]

    async def take_over(
        self, pool: str, consumer: str, message_ids: list[str], *, min_idle_ms: int
    ) -> tuple[list[Delivery], list[str]]:
        """``XCLAIM`` expired entries for ``consumer``; only those still idle are returned.

        Re-checking ``min_idle_ms`` inside ``XCLAIM`` means a worker that renewed its lease
        in the meantime keeps its entry: work is never taken from a live worker.
        """
        if not message_ids:
            return [], []
        entries = await self._redis.xclaim(
            self._keys.stream(pool), self._keys.group(pool), consumer, min_idle_ms, message_ids
        )
        return _split(entries)

    async def dead_letter(self, pool: str, message_id: str, ref: TaskRef, reason: str) -> None:
        """Copy an entry to the pool's dead-letter stream with ``reason``, then ack it."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self.add_dead_letter(pipe, pool, message_id, ref, reason)
            self.add_ack(pipe, pool, [message_id])
            await pipe.execute()

    def add_dead_letter(self, pipe: Pipeline, pool: str, message_id: str, ref: TaskRef,
                        reason: str) -> None:
        """Queue the copy of entry ``message_id`` (carrying ``ref``) to the pool's
        dead-letter stream with ``reason`` in ``pipe`` (no ack)."""
        pipe.xadd(self._keys.dead_letter(pool), {**encode(ref), "reason": reason,
                                                  "id": message_id})

    async def backlog(self, pool: str) -> Backlog:
        """Queued (undelivered) and in-flight (pending) entry counts of ``pool``."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.xlen(self._keys.stream(pool))
            pipe.xpending(self._keys.stream(pool), self._keys.group(pool))
            try:
                length, pending = await pipe.execute()
            except ResponseError:  # no stream or group yet: nothing waiting
                return Backlog(0, 0)
        in_flight = int(pending["pending"]) if pending else 0
        return Backlog(max(0, int(length) - in_flight), in_flight)

    async def in_flight_by_consumer(self, pool: str) -> dict[str, int]:
        """Unacknowledged entries per consumer (``XPENDING`` summary form)."""
        try:
            summary = await self._redis.xpending(self._keys.stream(pool), self._keys.group(pool))
        except ResponseError:
            return {}
        return {c["name"]: int(c["pending"]) for c in summary.get("consumers") or []}


def _split(entries: list) -> tuple[list[Delivery], list[str]]:
    deliveries, malformed = [], []
    for message_id, fields in entries:
        if not fields:  # deleted while pending: XCLAIM/XREADGROUP return an empty body
            malformed.append(message_id)
            continue
        try:
            deliveries.append(decode(message_id, fields))
        except (KeyError, ValueError):
            malformed.append(message_id)
    return deliveries, malformed
