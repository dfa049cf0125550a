"""Outcomes: committing a batch of attempt outcomes and everything they cause.

The SQL here only carries out what :mod:`.decisions` decides: which tasks close, fail or
are skipped, how the counters move and how an execution finishes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import asyncpg

from ..handlers import Counters, EndOfMain, Finish, next_step
from ..phases import EXECUTION_OPEN, TASK_FINAL, TaskPhase, sql_list
from .admission import promote
from .base import StoreBase, sid
from .decisions import CommitPlan, plan_commit, released
from .handlers import end_main
from .locks import release_held
from .records import CommitResult, OutcomeRecord, ReadyTask, TaskRef

# Guarded by the phase and attempt: only a task Running at that attempt moves, which is what
# makes a repeated or late delivery of the same attempt harmless. Fenced by the claim: only
# while the claim the outcome belongs to is still the task's current one ($13, NULL: not
# checked), and for a takeover only while the lease ran out before $14 (re-checked here,
# under the row lock, so a worker that renewed in the meantime keeps its task).
_MOVE_TASKS = """
    UPDATE tasks t
    SET phase = u.phase, outputs = u.outputs, error = u.error, message = u.message,
        reason = u.reason, due_at = u.due_at, timer_kind = u.timer_kind, resume_from = NULL,
        lease_until = NULL, waiting_for = u.waiting_for,
        finished_at = CASE WHEN u.phase = ANY($12::text[]) THEN u.finished_at END
    FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::jsonb[], $6::text[],
                $7::text[], $8::timestamptz[], $9::text[], $10::timestamptz[], $13::bigint[],
                $14::timestamptz[], $15::text[], $16::int[], $17::text[])
         AS u(eid, name, attempt, phase, outputs, error, message, due_at, timer_kind,
              finished_at, claim, lease_before, reason, locks, waiting_for)
    WHERE t.execution_id = u.eid AND t.name = u.name AND t.attempt = u.attempt
      AND t.phase = $11
      AND (u.claim IS NULL OR t.claim = u.claim)
      AND (u.lease_before IS NULL OR t.lease_until < u.lease_before)
      AND (u.locks = 0 OR u.locks = (SELECT count(*) FROM lock_holders h
                                      WHERE h.execution_id = t.execution_id
                                        AND h.task_name = t.name AND h.claim = u.claim))
    RETURNING t.execution_id, t.name"""

# The current claim of tasks whose outcome did not apply: was it refused by the fence?
_CURRENT_CLAIMS = """
    SELECT t.execution_id, t.name, t.claim FROM tasks t
    JOIN unnest($1::uuid[], $2::text[]) AS k(eid, name)
      ON t.execution_id = k.eid AND t.name = k.name"""

_RECORD_ATTEMPTS = """
    INSERT INTO attempts (execution_id, task_name, attempt, outcome, outputs, error, worker,
                          started_at, finished_at, reason)
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::jsonb[],
                         $6::text[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                         $10::text[])
    ON CONFLICT DO NOTHING"""

_SKIP = """
    UPDATE tasks t SET phase = $5, message = s.message, finished_at = $4
    FROM unnest($1::uuid[], $2::text[], $3::text[]) AS s(eid, name, message)
    WHERE t.execution_id = s.eid AND t.name = s.name AND t.phase = $6
    RETURNING t.execution_id, t.name"""

# A Pending dependent whose count reaches zero becomes Ready at its next attempt (1, or one
# past the attempts of an earlier round when the execution was retried), due now.
_COUNT_DOWN = """
    UPDATE tasks t
    SET deps_open = t.deps_open - d.n,
        phase = CASE WHEN t.phase = $5 AND t.deps_open - d.n <= 0 THEN $6 ELSE t.phase END,
        attempt = CASE WHEN t.phase = $5 AND t.deps_open - d.n <= 0 THEN t.attempt + 1
                       ELSE t.attempt END,
        due_at = CASE WHEN t.phase = $5 AND t.deps_open - d.n <= 0 THEN $4 ELSE t.due_at END
    FROM unnest($1::uuid[], $2::text[], $3::int[]) AS d(eid, name, n)
    WHERE t.execution_id = d.eid AND t.name = d.name
    RETURNING t.execution_id, t.name, t.phase, t.attempt, t.pool, t.deps_open, d.n,
              t.priority"""

_COUNTERS = """
    UPDATE executions e
    SET tasks_open = e.tasks_open - c.closed, tasks_failed = e.tasks_failed + c.failed,
        tasks_continued = e.tasks_continued + c.continued,
        handlers_failed = e.handlers_failed + c.hfailed, updated_at = $4
    FROM unnest($1::uuid[], $2::int[], $3::int[], $6::int[], $7::int[])
         AS c(eid, closed, failed, continued, hfailed)
    WHERE e.id = c.eid AND e.phase = ANY($5::text[])
    RETURNING e.id, e.tasks_open, e.tasks_failed, e.tasks_total, e.tasks_continued,
              e.handlers_total, e.handlers_failed, e.outcome, e.outcome_message, e.reason"""

_OUTCOME = """
    UPDATE executions SET outcome = $2, outcome_message = $3, tasks_open = tasks_open - $4
    WHERE id = $1"""

# Returns each finished run's concurrency group (NULL for most): those queues move. Still
# one statement and one round trip, as before groups existed.
_FINISH = """
    UPDATE executions e SET phase = f.phase, message = f.message,
        finished_at = $4, updated_at = $4
    , reason = COALESCE(f.reason, e.reason)
    FROM unnest($1::uuid[], $2::text[], $3::text[], $5::text[]) AS f(eid, phase, message, reason)
    WHERE e.id = f.eid
    RETURNING e.concurrency_key"""

_TASK_FINAL = sql_list(TASK_FINAL)
#: The counter columns :class:`~conveyor_engine.handlers.Counters` is read from.
_COUNTED = ("tasks_open", "tasks_total", "tasks_failed", "handlers_total", "handlers_failed",
            "outcome", "outcome_message", "reason")
_EXECUTION_OPEN = sql_list(EXECUTION_OPEN)


class OutcomeQueries(StoreBase):
    """The batch commit of attempt outcomes (see :class:`~.store.Store`)."""

    async def commit_outcomes(self, records: list[OutcomeRecord], *, now: datetime) -> CommitResult:
        """Record a batch of attempt outcomes and everything they cause, in one transaction.

        In order: task rows move (guarded: only a task ``Running`` at that attempt, under
        the record's claim when it names one, moves; see :class:`OutcomeRecord`);
        attempt rows are inserted; tasks downstream of a final failure are ``Skipped``;
        dependents of tasks that Succeeded or were Skipped count down and become ``Ready``
        at zero; execution counters drop and finished executions get their final phase
        (decided by :mod:`.decisions`). Returns what changed so the caller can dispatch
        ready tasks and publish events after the commit.
        """
        if not records:
            return CommitResult()
        records = sorted(records, key=lambda r: (r.ref.execution_id, r.ref.task))

        async def work(conn: asyncpg.Connection) -> CommitResult:
            return await _commit(conn, records, now)

        return await self._in_transaction(work)


async def _commit(
    conn: asyncpg.Connection, records: list[OutcomeRecord], now: datetime
) -> CommitResult:
    result = CommitResult()
    result.applied = await _move_tasks(conn, records)
    if len(result.applied) < len(records):
        result.refused = await _superseded(conn, records, result.applied)
        result.lock_refused = await _lock_lost(conn, records, result)
    locked = [r for r in result.applied + result.lock_refused
              if r.locks and r.claim is not None]
    await release_held(conn, [(r.ref.execution_id, r.ref.task, r.claim) for r in locked], now)
    if not result.applied:
        return result
    await _record_attempts(conn, [r for r in result.applied if r.transition.attempt_outcome])
    plan = plan_commit(result.applied)
    result.skipped = await _skip(conn, plan, now)
    result.ready = await _count_down(conn, plan, now)
    result.finished, groups = await _finish(conn, plan, result, now)
    if groups:
        # A run of a concurrency group finished: admit the next queued ones, in this
        # transaction (their tasks are dispatched with the batch's).
        promoted = await promote(conn, groups, now)
        result.ready += promoted.ready
        result.admitted, result.moved = promoted.admitted, promoted.moved
    return result


async def _move_tasks(
    conn: asyncpg.Connection, records: list[OutcomeRecord]
) -> list[OutcomeRecord]:
    """Move the task rows; return the records whose rows moved, in the given order."""
    moved = await conn.fetch(
        _MOVE_TASKS,
        [r.ref.execution_id for r in records],
        [r.ref.task for r in records],
        [r.ref.attempt for r in records],
        [r.transition.phase for r in records],
        [r.transition.outputs for r in records],
        [r.transition.error for r in records],
        [r.transition.message for r in records],
        [r.transition.due_at for r in records],
        [r.transition.timer_kind for r in records],
        [r.finished_at for r in records],
        TaskPhase.RUNNING,
        _TASK_FINAL,
        [r.claim for r in records],
        [r.lease_before for r in records],
        [r.transition.reason for r in records],
        [r.locks for r in records],
        [r.transition.waiting_for for r in records],
    )
    moved_keys = {(sid(m["execution_id"]), m["name"]) for m in moved}
    return [r for r in records if (r.ref.execution_id, r.ref.task) in moved_keys]


async def _superseded(conn: asyncpg.Connection, records: list[OutcomeRecord],
                      applied: list[OutcomeRecord]) -> list[OutcomeRecord]:
    """The records not applied because another claim took the task since theirs (fencing).

    Only records that carry a claim can be told apart; a duplicate of an attempt already
    recorded, or an outcome of a cancelled task, is not a fencing refusal.
    """
    moved = {id(r) for r in applied}
    fenced = [r for r in records if id(r) not in moved and r.claim is not None]
    if not fenced:
        return []
    rows = await conn.fetch(_CURRENT_CLAIMS, [r.ref.execution_id for r in fenced],
                            [r.ref.task for r in fenced])
    current = {(sid(row["execution_id"]), row["name"]): row["claim"] for row in rows}
    return [r for r in fenced
            if current.get((r.ref.execution_id, r.ref.task), r.claim) != r.claim]


async def _lock_lost(conn: asyncpg.Connection, records: list[OutcomeRecord],
                     result: CommitResult) -> list[OutcomeRecord]:
    """Apply the ``lock_lost`` transition of records refused only by the lock fence (their
    claim is still current, a lock of theirs is not): the attempt is recorded ``Lost``
    (reason ``LockLost``) and retried under its policy. Adds them to ``result.applied``;
    returns the original records."""
    done = {id(r) for r in result.applied} | {id(r) for r in result.refused}
    candidates = [r for r in records
                  if id(r) not in done and r.locks and r.lock_lost is not None]
    if not candidates:
        return []
    fallback = {id(r): replace(r, transition=r.lock_lost, locks=0, lock_lost=None)
                for r in candidates}
    moved = await _move_tasks(conn, list(fallback.values()))
    moved_ids = {id(m) for m in moved}
    result.applied += moved
    return [r for r in candidates if id(fallback[id(r)]) in moved_ids]


async def _record_attempts(conn: asyncpg.Connection, finished: list[OutcomeRecord]) -> None:
    """One ``attempts`` row per attempt that is over (a suspended attempt is not)."""
    if not finished:
        return
    await conn.execute(
        _RECORD_ATTEMPTS,
        [r.ref.execution_id for r in finished],
        [r.ref.task for r in finished],
        [r.ref.attempt for r in finished],
        [r.transition.attempt_outcome for r in finished],
        [r.transition.outputs for r in finished],
        [r.transition.error for r in finished],
        [r.worker for r in finished],
        [r.started_at for r in finished],
        [r.finished_at for r in finished],
        [r.transition.reason for r in finished],
    )


async def _skip(conn: asyncpg.Connection, plan: CommitPlan, now: datetime) -> list[tuple[str, str]]:
    """Skip the planned tasks still ``Pending``; return ``(execution id, task)`` of each."""
    if not plan.skips:
        return []
    rows = await conn.fetch(
        _SKIP,
        [eid for eid, _, _ in plan.skips], [name for _, name, _ in plan.skips],
        [message for _, _, message in plan.skips], now, TaskPhase.SKIPPED, TaskPhase.PENDING,
    )
    return [(sid(row["execution_id"]), row["name"]) for row in rows]


async def _count_down(conn: asyncpg.Connection, plan: CommitPlan, now: datetime
                      ) -> list[ReadyTask]:
    """Count the planned dependents down; return those released (now ``Ready``)."""
    if not plan.countdown:
        return []
    rows = await conn.fetch(
        _COUNT_DOWN,
        [eid for eid, _, _ in plan.countdown], [name for _, name, _ in plan.countdown],
        [n for _, _, n in plan.countdown], now, TaskPhase.PENDING, TaskPhase.READY,
    )
    return [ReadyTask(TaskRef(sid(row["execution_id"]), row["name"], row["attempt"]),
                      row["pool"], row["priority"])
            for row in rows
            if released(phase=row["phase"], deps_open=row["deps_open"], counted=row["n"])]


async def _finish(
    conn: asyncpg.Connection, plan: CommitPlan, result: CommitResult, now: datetime
) -> tuple[dict[str, str], set[str]]:
    """Move the counters of the touched executions; end the main tasks of those whose main
    tasks all ended (their handlers released or skipped, into ``result``); finish those
    with no task open (:func:`conveyor_engine.handlers.next_step`).

    Returns ``{execution id: final phase}`` of the executions finished now, and the
    concurrency groups of those that have one.
    """
    ids = list(plan.executions)
    closed = plan.closed_with(result.skipped)
    counters = await conn.fetch(
        _COUNTERS, ids, [closed[i] for i in ids], [plan.failed[i] for i in ids], now,
        _EXECUTION_OPEN, [plan.continued[i] for i in ids],
        [plan.handlers_failed[i] for i in ids],
    )
    done: dict[str, Finish] = {}
    for row in counters:
        eid = sid(row["id"])
        counted = Counters(**{k: row[k] for k in _COUNTED}, continued=row["tasks_continued"])
        step = next_step(counted)
        if isinstance(step, EndOfMain):
            # The main tasks ended: release the handlers that run, skip the others.
            ended = await end_main(conn, eid, run=step.run, skip=step.skip, now=now)
            await conn.execute(_OUTCOME, eid, step.outcome, step.message, len(ended.skipped))
            result.ready += ended.ready
            result.skipped += [(eid, name) for name in ended.skipped]
            left = counted.tasks_open - len(ended.skipped)
            step = next_step(replace(counted, tasks_open=left, outcome=step.outcome,
                                     outcome_message=step.message),
                             handlers_run=counted.handlers_total - len(ended.skipped))
        if isinstance(step, Finish):
            done[eid] = step
    if not done:
        return {}, set()
    ids = sorted(done)
    args = (ids, [done[i].phase for i in ids], [done[i].message for i in ids], now,
            [done[i].reason for i in ids])
    groups = {row["concurrency_key"] for row in await conn.fetch(_FINISH, *args)
              if row["concurrency_key"] is not None}
    return {i: done[i].phase for i in ids}, groups
