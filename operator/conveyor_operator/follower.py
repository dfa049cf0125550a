"""Mirrors engine state onto Execution status: change stream, coalesced writes, resync.

Engine events (Redis pub/sub) only mark an execution dirty; every ``interval`` seconds the
dirty ones are re-read from PostgreSQL (the truth) and their status patched when it
changed. So a busy execution costs at most one API write per interval however many events
it produces, a dropped pub/sub message is repaired by the periodic resync, and a status
write never triggers work (the handlers do not react to status).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from conveyor_engine.api import Engine
from conveyor_engine.phases import EXECUTION_FINAL, TASK_FINAL, ExecutionPhase, TaskPhase
from conveyor_engine.store.records import ExecutionState

from .kube import Kube, ObjectRef
from .status import execution_status, phase_events, status_patch

log = logging.getLogger(__name__)

#: Status refreshes run at once, at most; keeps a slow API server from queueing everything.
_PARALLEL = 16


@dataclass(slots=True)
class _Tracked:
    ref: ObjectRef
    generation: int | None
    status: dict[str, Any] = field(default_factory=dict)


class ExecutionFollower:
    """Keeps the status of tracked Executions in step with the engine."""

    def __init__(self, engine: Engine, kube: Kube, *, interval: float, resync: float,
                 pool_exists: Callable[[str], bool] | None = None,
                 pool_without_workers: Callable[[str], bool] | None = None,
                 on_final: Callable[[ObjectRef, dict[str, Any]], Awaitable[None]] | None = None,
                 ) -> None:
        """``interval`` and ``resync`` in seconds; ``pool_exists(name)`` says whether a
        WorkerPool exists (None: never report missing pools); ``on_final(ref, status)`` is
        awaited when an Execution's written status is final (its TTL is then scheduled;
        it may be called more than once for one object)."""
        self._engine = engine
        self._kube = kube
        self._interval = interval
        self._resync = resync
        self._pool_exists = pool_exists
        self._pool_without_workers = pool_without_workers
        self._tracked: dict[str, _Tracked] = {}
        self._dirty: set[str] = set()
        self._on_final = on_final

    def track(self, execution_id: str, ref: ObjectRef, generation: int | None,
              status: dict[str, Any] | None) -> None:
        """Follow ``execution_id`` for the object ``ref`` whose current status is ``status``.

        When it is followed already, the status this follower wrote last is kept and only
        ``ref`` and ``generation`` are taken: the caller's copy (kopf's view of the object,
        read before the handler ran) may be older, and starting from it would announce a
        phase change twice (or miss one).
        """
        tracked = self._tracked.get(execution_id)
        if tracked is not None and tracked.ref.uid == ref.uid:
            tracked.ref, tracked.generation = ref, generation
        else:
            self._tracked[execution_id] = _Tracked(ref, generation, dict(status or {}))
        self._dirty.add(execution_id)

    def restarted(self, execution_id: str, ref: ObjectRef, generation: int | None,
                  status: dict[str, Any] | None) -> None:
        """Follow a run retried from its failed step as running again, so that its next
        finish is announced (``Failed`` again included) even when it comes before a
        status write has shown it running."""
        self.track(execution_id, ref, generation, status)
        self._tracked[execution_id].status["phase"] = str(ExecutionPhase.RUNNING)

    def name_of(self, execution_id: str) -> str | None:
        """``namespace/name`` of the Execution followed for ``execution_id``, or None."""
        tracked = self._tracked.get(execution_id)
        return f"{tracked.ref.namespace}/{tracked.ref.name}" if tracked else None

    def refresh_all(self) -> None:
        """Re-read every tracked execution on the next flush (a pool came or went)."""
        self._dirty.update(self._tracked)

    def rewrite(self, execution_id: str, ref: ObjectRef, generation: int | None) -> None:
        """Write the whole status of ``execution_id`` again on the next flush, as if none
        had been written (fields a CRD pruned come back); finished ones too."""
        self._tracked[execution_id] = _Tracked(ref, generation, {})
        self._dirty.add(execution_id)

    def forget(self, execution_id: str) -> None:
        """Stop following (the object was deleted)."""
        self._tracked.pop(execution_id, None)
        self._dirty.discard(execution_id)

    async def run(self) -> None:
        """Listen, flush and resync until cancelled."""
        await asyncio.gather(self._listen(), self._flush_loop(), self._resync_loop())

    async def _listen(self) -> None:
        while True:
            try:
                async for batch in self._engine.events():
                    for event in batch:
                        if event.execution in self._tracked:
                            self._dirty.add(event.execution)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine change stream failed; resubscribing and resyncing")
                self._dirty.update(self._tracked)
                await asyncio.sleep(1.0)

    async def _resync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._resync)
            self._dirty.update(self._tracked)

    async def _flush_loop(self) -> None:
        gate = asyncio.Semaphore(_PARALLEL)

        async def one(execution_id: str) -> None:
            async with gate:
                try:
                    await self.refresh(execution_id)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("refreshing the status of execution %s failed", execution_id)
                    self._dirty.add(execution_id)

        while True:
            await asyncio.sleep(self._interval)
            batch, self._dirty = self._dirty, set()
            if batch:
                await asyncio.gather(*(one(eid) for eid in batch))

    async def _pool_problems(self, state: ExecutionState) -> tuple[list[str], list[str]]:
        """``(missing, without workers)``: WorkerPools that open tasks of ``state`` run on
        and that do not exist, and those with a task waiting ``Ready`` whose pool has had
        no ready worker for a while (:meth:`PoolScaler.without_workers`)."""
        if self._pool_exists is None or state.phase in EXECUTION_FINAL:
            return [], []
        try:
            workflow = await self._engine.workflow(state.workflow_hash, state.workflow_name)
        except LookupError:
            return [], []

        def pool_of(name: str) -> str:
            return workflow.tasks[name].spec.pool or workflow.pool

        known = [t for t in state.tasks if t.name in workflow.tasks]
        pools = {pool_of(t.name) for t in known if t.phase not in TASK_FINAL}
        missing = sorted(p for p in pools if not self._pool_exists(p))
        idle: list[str] = []
        if self._pool_without_workers is not None:
            queued = {pool_of(t.name) for t in known if t.phase == TaskPhase.READY}
            idle = sorted(p for p in queued - set(missing) if self._pool_without_workers(p))
        return missing, idle

    async def refresh(self, execution_id: str) -> None:
        """Re-read one execution and write its status and Events if anything changed."""
        tracked = self._tracked.get(execution_id)
        if tracked is None:
            return
        state = await self._engine.get(execution_id)
        if state is None:
            return
        missing, idle = await self._pool_problems(state)
        desired = execution_status(generation=tracked.generation, state=state,
                                   previous=tracked.status, now=datetime.now(UTC),
                                   missing_pools=missing, idle_pools=idle,
                                   names=self.name_of)
        patch = status_patch(tracked.status, desired)
        if not patch:
            if state.phase in EXECUTION_FINAL:
                self._tracked.pop(execution_id, None)
                await self._finished(tracked)
            return
        if not await self._kube.patch_status(tracked.ref, patch, known=tracked.status):
            self.forget(execution_id)  # the object is gone
            return
        before = tracked.status.get("phase")
        tracked.status = {k: v for k, v in {**tracked.status, **patch}.items() if v is not None}
        for event in phase_events(before, state.phase, desired.get("message") or "",
                                  state.reason):
            await self._kube.post_event(tracked.ref, event)
        if state.phase in EXECUTION_FINAL:
            await self._finished(tracked)

    async def _finished(self, tracked: _Tracked) -> None:
        """Tell ``on_final`` that the Execution's status is final; its failure is logged
        (the next resync of a still-tracked object, or the operator's restart, tries again)."""
        if self._on_final is None:
            return
        try:
            await self._on_final(tracked.ref, dict(tracked.status))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("scheduling the deletion of finished Execution %s/%s failed",
                          tracked.ref.namespace, tracked.ref.name)
