"""Cancelling runs: the PostgreSQL transaction and the Redis effects of cancelling one
execution, shared by :meth:`Engine.cancel <conveyor_engine.api.Engine.cancel>` and the
dispatcher's deadline sweep (:meth:`Dispatcher._expire_deadlines
<conveyor_engine.worker.dispatcher.Dispatcher._expire_deadlines>`), which cancels the child
runs of the tasks a deadline cancelled without an :class:`~conveyor_engine.api.Engine`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from redis.asyncio import Redis

from .cache import Cache
from .events import Event, add_message, add_publish
from .keys import Keys
from .phases import EXECUTION_OPEN, ExecutionPhase, TaskPhase
from .queue import Queue
from .store import Store


@dataclass(frozen=True, slots=True)
class Canceller:
    """What cancelling needs: the store (truth), Redis (the workers' control channel, the
    finished-run cache, the dispatch queue and the event channel)."""

    store: Store
    redis: Redis
    keys: Keys
    cache: Cache
    queue: Queue

    async def cancel_one(self, execution_id: str, reason: str) -> bool:
        """Cancel one execution, not its children: open tasks become ``Cancelled``,
        running ones are interrupted, runs its concurrency group admits in its place are
        dispatched. False when it is unknown or already final."""
        cancelled, admitted = await self.store.cancel_and_admit(
            execution_id, reason=reason, now=datetime.now(UTC))
        if cancelled is None:
            return False
        async with self.redis.pipeline(transaction=False) as pipe:
            add_message(pipe, self.keys.control(),
                        orjson.dumps({"cancel": execution_id, "reason": reason}))
            self.cache.add_finished(pipe, execution_id)
            # Runs of its concurrency group admitted in its place start now (or, if Redis
            # fails here, after the dispatcher's grace).
            self.queue.add_dispatch(pipe, admitted.ready)
            add_publish(pipe, self.keys, [Event(execution_id, ExecutionPhase.CANCELLED)] + [
                Event(execution_id, TaskPhase.CANCELLED, name) for name in cancelled] + [
                Event(eid, ExecutionPhase.PENDING) for eid in admitted.admitted + admitted.moved])
            await pipe.execute()
        return True

    async def cancel_tree(self, execution_id: str, reason: str) -> int:
        """Cancel ``execution_id`` (a child run) and its open descendants, nearest first,
        all with ``reason``. Returns how many were cancelled."""
        descendants = await self.store.open_descendants(execution_id)
        count = 0
        for eid in [execution_id, *descendants]:
            count += await self.cancel_one(eid, reason)
        return count

    async def cancel_children_of(self, execution_id: str, tasks: list[str], reason: str
                                 ) -> int:
        """Cancel the open child runs (and theirs) that the latest attempts of ``tasks``
        of ``execution_id`` started (``workflow`` tasks a deadline cancelled). Returns how
        many runs were cancelled."""
        if not tasks:
            return 0
        children = await self.store.children_by_task(execution_id)
        count = 0
        for task in tasks:
            child = children.get(task)
            if child is not None and child[1] in EXECUTION_OPEN:
                count += await self.cancel_tree(child[0], reason)
        return count
