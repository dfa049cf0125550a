"""Timers and lost dispatches: the dispatcher's queries."""

from __future__ import annotations

from datetime import datetime, timedelta

from ..phases import TaskPhase
from .base import StoreBase, phase_literal, pick_and_update_sql
from .records import ReadyTask

# A retry timer starts the next attempt; a resume timer re-runs the same attempt with
# resume_from set (a wait task's durable sleep).
_FIRE_TIMERS = pick_and_update_sql(
    phase=TaskPhase.WAITING, column="due_at", inclusive=True,
    set_sql="attempt = CASE WHEN t.timer_kind = 'retry' THEN t.attempt + 1 ELSE t.attempt END, "
            "resume_from = CASE WHEN t.timer_kind = 'resume' THEN t.due_at END, "
            "timer_kind = NULL, due_at = $2, worker = NULL")

# A suspended execution's Ready tasks are not lost: they wait for it to resume.
_REARM_LOST = pick_and_update_sql(
    phase=TaskPhase.READY, column="due_at", inclusive=False, set_sql="due_at = $2",
    where="NOT EXISTS (SELECT 1 FROM executions s WHERE s.id = tasks.execution_id "
          "AND s.suspended)")

# Served by the partial index tasks_waiting: the phase is a literal (see base.py).
_WAITING = f"pool = $1 AND phase = {phase_literal(TaskPhase.WAITING)}"
_NEXT_TIMER = f"SELECT min(due_at) FROM tasks WHERE {_WAITING}"
_WAITING_BY_KIND = f"SELECT timer_kind, count(*) AS n FROM tasks WHERE {_WAITING} GROUP BY 1"
_TIMERS_DUE_BEFORE = f"SELECT count(*) FROM tasks WHERE {_WAITING} AND due_at < $2"


class TimerQueries(StoreBase):
    """Durable timers and the recovery of lost dispatches (see :class:`~.store.Store`)."""

    async def fire_due_timers(self, pool: str, *, now: datetime, limit: int) -> list[ReadyTask]:
        """Move ``Waiting`` tasks whose timer is due to ``Ready``; return them for dispatch.

        A ``retry`` timer starts the next attempt; a ``resume`` timer re-runs the same
        attempt with ``resume_from`` set. ``FOR UPDATE SKIP LOCKED`` lets several
        dispatchers run without waiting on each other.
        """
        return await self._pick_and_update(
            _FIRE_TIMERS, pool, now=now, cutoff=now, limit=limit, to=TaskPhase.READY)

    async def rearm_lost(
        self, pool: str, *, now: datetime, older_than: timedelta, limit: int
    ) -> list[ReadyTask]:
        """Ready tasks not claimed for ``older_than``: re-arm and return them for re-dispatch.

        They are what a crash between a commit and its stream XADD leaves behind. A copy
        that was not lost after all is refused at claim time, so re-dispatch is safe. Tasks
        of a suspended execution are left alone (resuming dispatches them).
        """
        return await self._pick_and_update(
            _REARM_LOST, pool, now=now, cutoff=now - older_than, limit=limit,
            to=TaskPhase.READY)

    async def next_timer(self, pool: str) -> datetime | None:
        """When the earliest ``Waiting`` timer of ``pool`` falls due, or None."""
        return await self._pool.fetchval(_NEXT_TIMER, pool)

    async def waiting_by_kind(self, pool: str) -> dict[str, int]:
        """How many tasks of ``pool`` wait, by timer kind (``retry``, ``resume``, ``lock``,
        ``rate``)."""
        rows = await self._pool.fetch(_WAITING_BY_KIND, pool)
        return {r["timer_kind"]: r["n"] for r in rows if r["timer_kind"] is not None}

    async def timers_due_before(self, pool: str, until: datetime) -> int:
        """How many ``Waiting`` timers of ``pool`` fall due before ``until``."""
        return await self._pool.fetchval(_TIMERS_DUE_BEFORE, pool, until)
