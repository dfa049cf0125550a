"""State-change events on Redis pub/sub, for the operator and any other watcher.

Pub/sub is fire-and-forget: a subscriber that was disconnected misses messages, so
consumers must also resync from PostgreSQL (:meth:`conveyor_engine.api.Engine.get`).
Events are published in batches, one message per commit, as a JSON list.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from .keys import Keys


@dataclass(frozen=True, slots=True)
class Event:
    """One change: a task's new ``phase`` (``task`` set) or an execution's (``task`` None)."""

    execution: str
    phase: str
    task: str | None = None
    attempt: int | None = None


def add_publish(pipe: Pipeline, keys: Keys, events: list[Event]) -> None:
    """Queue one ``PUBLISH`` of ``events`` (if any) in ``pipe``."""
    if events:
        add_message(pipe, keys.events(), orjson.dumps([asdict(e) for e in events]))


def add_message(pipe: Pipeline, channel: str, payload: bytes | str) -> None:
    """Queue ``PUBLISH channel payload`` in ``pipe``, a plain or a Redis Cluster pipeline.

    Sent with ``execute_command``: redis-py's cluster pipeline refuses its ``publish()``
    method, though a cluster delivers a ``PUBLISH`` sent to any node to subscribers on
    every node (Redis Cluster specification, "Pub/Sub").
    """
    pipe.execute_command("PUBLISH", channel, payload)


async def subscribe(redis: Redis, keys: Keys) -> AsyncIterator[list[Event]]:
    """Yield each published batch of events until the caller stops iterating.

    Raises redis-py connection errors when the connection drops; callers reconnect and
    resync from PostgreSQL.
    """
    pubsub = redis.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(keys.events())
    try:
        while True:
            message = await pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            yield [Event(**item) for item in orjson.loads(message["data"])]
    finally:
        await pubsub.unsubscribe()
        await pubsub.aclose()
