"""All SQL Conveyor runs, behind one class. PostgreSQL is the source of truth.

Batch statements take parallel arrays through ``unnest`` so that a batch of any size costs
one round trip per statement (asyncpg sends arrays natively). Every state change is guarded
by the phase and attempt it expects, which is what makes a repeated or late delivery of the
same attempt harmless: at most one final outcome is recorded per (execution, task, attempt).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import orjson

from ..phases import SATISFIES_DEPENDENTS
from ..progress import execution_phase, upstream_failure_message
from .migrate import migrate
from .records import (
    AttemptState,
    Claimed,
    CommitResult,
    ExecutionHeader,
    ExecutionState,
    OutcomeRecord,
    ReadyTask,
    TaskRef,
    TaskState,
)

#: Deadlocks between two batch commits touching the same dependents are resolved by
#: PostgreSQL aborting one of them; the batch is then simply committed again.
_RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
_MAX_TX_RETRIES = 10


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


def _sid(value: Any) -> str:
    return str(value)


class Store:
    """PostgreSQL access for the engine. Create with :meth:`connect`; close with :meth:`close`.

    All methods raise asyncpg errors unchanged on connection problems; callers decide
    whether to retry. Times passed in are timezone-aware UTC datetimes.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    @classmethod
    async def connect(
        cls, dsn: str, *, min_size: int = 1, max_size: int = 10, apply_migrations: bool = True,
        ssl: Any = None,
    ) -> Store:
        """Open a connection pool to ``dsn`` and (by default) apply pending migrations.

        ``ssl`` is an ``ssl.SSLContext`` (see :mod:`conveyor_engine.connections`) or None
        to follow the URL's ``sslmode``.
        """
        extra = {"ssl": ssl} if ssl is not None else {}
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, **extra
        )
        store = cls(pool)
        if apply_migrations:
            await store.migrate()
        return store

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self._pool.close()

    async def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied now."""
        async with self._pool.acquire() as conn:
            return await migrate(conn)

    async def _in_transaction(self, work: Any) -> Any:
        """Run ``work(conn)`` in a transaction, retrying it on deadlock or serialization error.

        Retries wait a short random time that grows with each try, so two transactions that
        collided do not collide again in lockstep.
        """
        for attempt in range(_MAX_TX_RETRIES):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    return await work(conn)
            except _RETRYABLE:
                if attempt == _MAX_TX_RETRIES - 1:
                    raise
                await asyncio.sleep(random.uniform(0.005, 0.02) * (attempt + 1))
        raise AssertionError("unreachable")

    # -- workflows ---------------------------------------------------------------------

    async def save_workflow(self, content_hash: str, name: str, spec_json: str) -> None:
        """Record a workflow version (no-op when the content hash is already stored).

        ``spec_json`` is the canonical JSON text (see ``CompiledWorkflow.to_json``).
        """
        await self._pool.execute(
            """INSERT INTO workflow_versions (content_hash, name, spec)
               VALUES ($1, $2, $3::text::jsonb)
               ON CONFLICT (content_hash) DO NOTHING""",
            content_hash, name, spec_json,
        )

    async def load_workflow(self, content_hash: str) -> tuple[str, dict[str, Any]] | None:
        """Return ``(name, spec)`` of a stored workflow version, or None."""
        row = await self._pool.fetchrow(
            "SELECT name, spec FROM workflow_versions WHERE content_hash = $1", content_hash
        )
        return (row["name"], row["spec"]) if row else None

    # -- submission ----------------------------------------------------------------------

    async def create_execution(
        self,
        *,
        workflow_name: str,
        workflow_hash: str,
        spec_json: str,
        pool: str,
        inputs: dict[str, Any],
        tasks: list[tuple[str, str, int, str]],
        idempotency_key: str | None,
        now: datetime,
    ) -> tuple[str, bool, list[ReadyTask]]:
        """Create an execution and its task rows in one transaction.

        ``spec_json`` is the workflow's canonical JSON (stored once per content hash).
        ``tasks`` are ``(name, type, number of dependencies, pool)``; tasks without
        dependencies start ``Ready`` (attempt 1); ``pool`` is the execution's default pool.
        Returns ``(execution id, created, ready tasks)``. When ``idempotency_key`` names an
        existing execution nothing is written and that execution's id is returned with
        ``created=False`` (Stripe-style idempotency keys).
        """
        execution_id = str(uuid.uuid4())

        async def work(conn: asyncpg.Connection) -> tuple[str, bool, list[ReadyTask]]:
            await conn.execute(
                """INSERT INTO workflow_versions (content_hash, name, spec)
                   VALUES ($1, $2, $3::text::jsonb)
                   ON CONFLICT (content_hash) DO NOTHING""",
                workflow_hash, workflow_name, spec_json,
            )
            created = await conn.fetchval(
                """INSERT INTO executions (id, idempotency_key, workflow_name, workflow_hash,
                       pool, inputs, phase, tasks_total, tasks_open, created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, 'Pending', $7, $7, $8, $8)
                   ON CONFLICT (idempotency_key) DO NOTHING RETURNING id""",
                execution_id, idempotency_key, workflow_name, workflow_hash, pool, inputs,
                len(tasks), now,
            )
            if created is None:
                existing = await conn.fetchval(
                    "SELECT id FROM executions WHERE idempotency_key = $1", idempotency_key
                )
                return _sid(existing), False, []
            await conn.copy_records_to_table(
                "tasks",
                columns=["execution_id", "name", "type", "pool", "phase", "deps_open",
                         "attempt", "due_at"],
                records=[
                    (created, name, type_, task_pool, "Ready" if deps == 0 else "Pending", deps,
                     1 if deps == 0 else 0, now if deps == 0 else None)
                    for name, type_, deps, task_pool in tasks
                ],
            )
            ready = [
                ReadyTask(TaskRef(execution_id, name, 1), task_pool)
                for name, _, deps, task_pool in tasks if deps == 0
            ]
            return execution_id, True, ready

        return await self._in_transaction(work)

    async def find_execution_by_key(self, idempotency_key: str) -> str | None:
        """The id of the execution submitted with ``idempotency_key``, or None."""
        found = await self._pool.fetchval(
            "SELECT id FROM executions WHERE idempotency_key = $1", idempotency_key
        )
        return _sid(found) if found else None

    # -- reading ---------------------------------------------------------------------------

    async def execution_headers(self, execution_ids: list[str]) -> dict[str, ExecutionHeader]:
        """Headers of the given executions by id (missing ids are absent from the result)."""
        rows = await self._pool.fetch(
            """SELECT id, workflow_name, workflow_hash, pool, inputs, phase
               FROM executions WHERE id = ANY($1::uuid[])""",
            execution_ids,
        )
        return {
            _sid(r["id"]): ExecutionHeader(
                _sid(r["id"]), r["workflow_name"], r["workflow_hash"], r["pool"], r["inputs"],
                r["phase"],
            )
            for r in rows
        }

    async def task_outputs(
        self, execution_id: str, names: list[str]
    ) -> dict[str, tuple[str, dict[str, Any] | None]]:
        """``{task name: (phase, outputs)}`` for the named tasks of one execution."""
        rows = await self._pool.fetch(
            """SELECT name, phase, outputs FROM tasks
               WHERE execution_id = $1 AND name = ANY($2::text[])""",
            execution_id, names,
        )
        return {r["name"]: (r["phase"], r["outputs"]) for r in rows}

    async def get_execution(self, execution_id: str) -> ExecutionState | None:
        """The execution with all its tasks (ordered by name), or None when unknown."""
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow("SELECT * FROM executions WHERE id = $1", execution_id)
            if row is None:
                return None
            tasks = await conn.fetch(
                """SELECT name, type, phase, attempt, outputs, error, message, started_at,
                          finished_at, due_at
                   FROM tasks WHERE execution_id = $1 ORDER BY name""",
                execution_id,
            )
        return ExecutionState(
            execution_id=_sid(row["id"]),
            idempotency_key=row["idempotency_key"],
            workflow_name=row["workflow_name"],
            workflow_hash=row["workflow_hash"],
            pool=row["pool"],
            inputs=row["inputs"],
            phase=row["phase"],
            message=row["message"],
            tasks_total=row["tasks_total"],
            tasks_open=row["tasks_open"],
            created_at=row["created_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            updated_at=row["updated_at"],
            tasks=tuple(TaskState(**dict(t)) for t in tasks),
        )

    async def get_attempts(self, execution_id: str) -> list[AttemptState]:
        """Every recorded attempt of an execution, by task then attempt number."""
        rows = await self._pool.fetch(
            """SELECT task_name AS task, attempt, outcome, outputs, error, worker, started_at,
                      finished_at
               FROM attempts WHERE execution_id = $1 ORDER BY task_name, attempt""",
            execution_id,
        )
        return [AttemptState(**dict(r)) for r in rows]

    async def executions_updated_since(self, since: datetime, limit: int = 1000) -> list[str]:
        """Ids of executions changed after ``since`` (for resyncing missed pub/sub events)."""
        rows = await self._pool.fetch(
            """SELECT id FROM executions WHERE updated_at > $1 ORDER BY updated_at LIMIT $2""",
            since, limit,
        )
        return [_sid(r["id"]) for r in rows]

    # -- claims -----------------------------------------------------------------------------

    async def claim(
        self, refs: list[TaskRef], *, worker: str, now: datetime, lease: timedelta,
        owners: list[str | None] | None = None,
    ) -> list[Claimed]:
        """Move the given task attempts to ``Running`` for ``worker``; return those accepted.

        A claim is accepted while the task is ``Ready`` at that attempt, or ``Running`` at
        that attempt for the worker named in ``owners`` (the consumer whose lease expired:
        taking over work from a dead worker, never from another one). Duplicates, cancelled
        tasks and finished attempts are refused, which is how a message delivered twice
        runs once. The claim carries a lease in PostgreSQL until ``now + lease``.
        Executions still ``Pending`` become ``Running``.
        """
        if not refs:
            return []
        owners = owners if owners is not None else [None] * len(refs)
        rows = await self._pool.fetch(
            """WITH claimed AS (
                   UPDATE tasks t
                   SET phase = 'Running', worker = $4, started_at = COALESCE(t.started_at, $5),
                       message = NULL, lease_until = $7
                   FROM unnest($1::uuid[], $2::text[], $3::int[], $6::text[])
                        AS c(eid, name, attempt, owner)
                   WHERE t.execution_id = c.eid AND t.name = c.name AND t.attempt = c.attempt
                     AND (t.phase = 'Ready' OR (t.phase = 'Running' AND t.worker = c.owner))
                   RETURNING t.execution_id, t.name, t.attempt, t.resume_from),
               started AS (
                   UPDATE executions e SET phase = 'Running', started_at = $5, updated_at = $5
                   WHERE e.id IN (SELECT execution_id FROM claimed) AND e.phase = 'Pending'
                   RETURNING e.id)
               SELECT c.*, c.execution_id IN (SELECT id FROM started) AS started FROM claimed c""",
            [r.execution_id for r in refs], [r.task for r in refs], [r.attempt for r in refs],
            worker, now, owners, now + lease,
        )
        return [
            Claimed(TaskRef(_sid(r["execution_id"]), r["name"], r["attempt"]), r["resume_from"],
                    r["started"])
            for r in rows
        ]

    async def renew_leases(self, worker: str, *, until: datetime) -> int:
        """Extend the PostgreSQL lease of every task ``worker`` runs; return how many."""
        result = await self._pool.execute(
            "UPDATE tasks SET lease_until = $2 WHERE worker = $1 AND phase = 'Running'",
            worker, until,
        )
        return int(result.split()[-1])

    async def rearm_abandoned(
        self, pool: str, *, now: datetime, expired_for: timedelta, limit: int
    ) -> list[ReadyTask]:
        """``Running`` tasks whose lease ran out ``expired_for`` ago: back to ``Ready``.

        The Redis stream's own lease takeover normally recovers such work first; this is
        for when Redis lost its pending entries. The old entry, if it ever resurfaces, is
        refused at claim time because the task no longer belongs to its worker.
        """
        rows = await self._pool.fetch(
            """UPDATE tasks t SET phase = 'Ready', worker = NULL, due_at = $2,
                   lease_until = NULL, message = 'its worker stopped renewing the lease'
               FROM (SELECT execution_id, name FROM tasks
                     WHERE pool = $1 AND phase = 'Running' AND lease_until < $3
                     ORDER BY lease_until LIMIT $4 FOR UPDATE SKIP LOCKED) d
               WHERE t.execution_id = d.execution_id AND t.name = d.name
               RETURNING t.execution_id, t.name, t.attempt""",
            pool, now, now - expired_for, limit,
        )
        return _ready(rows, pool)

    async def hand_back(self, refs: list[TaskRef], *, worker: str, now: datetime) -> list[TaskRef]:
        """Return running attempts of ``worker`` to ``Ready`` (graceful shutdown).

        Returns the refs that were handed back; the caller re-dispatches them.
        """
        if not refs:
            return []
        rows = await self._pool.fetch(
            """UPDATE tasks t SET phase = 'Ready', worker = NULL, due_at = $5,
                   lease_until = NULL, message = 'handed back by a stopping worker'
               FROM unnest($1::uuid[], $2::text[], $3::int[]) AS c(eid, name, attempt)
               WHERE t.execution_id = c.eid AND t.name = c.name AND t.attempt = c.attempt
                 AND t.phase = 'Running' AND t.worker = $4
               RETURNING t.execution_id, t.name, t.attempt""",
            [r.execution_id for r in refs], [r.task for r in refs], [r.attempt for r in refs],
            worker, now,
        )
        return [TaskRef(_sid(r["execution_id"]), r["name"], r["attempt"]) for r in rows]

    # -- outcomes -------------------------------------------------------------------------

    async def commit_outcomes(self, records: list[OutcomeRecord], *, now: datetime) -> CommitResult:
        """Record a batch of attempt outcomes and everything they cause, in one transaction.

        In order: task rows move (guarded: only a task ``Running`` at that attempt moves);
        attempt rows are inserted; tasks downstream of a final failure are ``Skipped``;
        dependents of tasks that Succeeded or were Skipped count down and become ``Ready``
        at zero; execution counters drop and finished executions get their final phase
        (decided by :func:`conveyor_engine.progress.execution_phase`). Returns what changed
        so the caller can dispatch ready tasks and publish events after the commit.
        """
        if not records:
            return CommitResult()
        records = sorted(records, key=lambda r: (r.ref.execution_id, r.ref.task))

        async def work(conn: asyncpg.Connection) -> CommitResult:
            return await self._commit_outcomes(conn, records, now)

        return await self._in_transaction(work)

    async def _commit_outcomes(
        self, conn: asyncpg.Connection, records: list[OutcomeRecord], now: datetime
    ) -> CommitResult:
        result = CommitResult()
        moved = await conn.fetch(
            """UPDATE tasks t
               SET phase = u.phase, outputs = u.outputs, error = u.error, message = u.message,
                   due_at = u.due_at, timer_kind = u.timer_kind, resume_from = NULL,
                   lease_until = NULL,
                   finished_at = CASE WHEN u.phase IN ('Succeeded', 'Failed', 'Skipped')
                                      THEN u.finished_at END
               FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[], $5::jsonb[],
                           $6::text[], $7::text[], $8::timestamptz[], $9::text[],
                           $10::timestamptz[])
                    AS u(eid, name, attempt, phase, outputs, error, message, due_at, timer_kind,
                         finished_at)
               WHERE t.execution_id = u.eid AND t.name = u.name AND t.attempt = u.attempt
                 AND t.phase = 'Running'
               RETURNING t.execution_id, t.name""",
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
        )
        moved_keys = {(_sid(m["execution_id"]), m["name"]) for m in moved}
        applied = [r for r in records if (r.ref.execution_id, r.ref.task) in moved_keys]
        result.applied = applied
        if not applied:
            return result

        finished_attempts = [r for r in applied if r.transition.attempt_outcome]
        if finished_attempts:
            await conn.execute(
                """INSERT INTO attempts (execution_id, task_name, attempt, outcome, outputs,
                       error, worker, started_at, finished_at)
                   SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::text[],
                                        $5::jsonb[], $6::text[], $7::text[],
                                        $8::timestamptz[], $9::timestamptz[])
                   ON CONFLICT DO NOTHING""",
                [r.ref.execution_id for r in finished_attempts],
                [r.ref.task for r in finished_attempts],
                [r.ref.attempt for r in finished_attempts],
                [r.transition.attempt_outcome for r in finished_attempts],
                [r.transition.outputs for r in finished_attempts],
                [r.transition.error for r in finished_attempts],
                [r.worker for r in finished_attempts],
                [r.started_at for r in finished_attempts],
                [r.finished_at for r in finished_attempts],
            )

        closed: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        touched: set[str] = set()
        for r in applied:
            touched.add(r.ref.execution_id)
            if r.transition.final:
                closed[r.ref.execution_id] += 1
            if r.transition.phase == "Failed":
                failed[r.ref.execution_id] += 1

        skips: dict[tuple[str, str], str] = {}
        for r in applied:
            if r.transition.phase == "Failed":
                for name in r.downstream:
                    skips.setdefault((r.ref.execution_id, name), r.ref.task)
        if skips:
            keys = sorted(skips)
            rows = await conn.fetch(
                """UPDATE tasks t SET phase = 'Skipped', message = s.message, finished_at = $4
                   FROM unnest($1::uuid[], $2::text[], $3::text[]) AS s(eid, name, message)
                   WHERE t.execution_id = s.eid AND t.name = s.name AND t.phase = 'Pending'
                   RETURNING t.execution_id, t.name""",
                [k[0] for k in keys], [k[1] for k in keys],
                [upstream_failure_message(skips[k]) for k in keys], now,
            )
            for row in rows:
                eid = _sid(row["execution_id"])
                closed[eid] += 1
                result.skipped.append((eid, row["name"]))

        countdown: Counter[tuple[str, str]] = Counter()
        for r in applied:
            if r.transition.phase in SATISFIES_DEPENDENTS:
                for name in r.dependents:
                    countdown[(r.ref.execution_id, name)] += 1
        if countdown:
            keys = sorted(countdown)
            rows = await conn.fetch(
                """UPDATE tasks t
                   SET deps_open = t.deps_open - d.n,
                       phase = CASE WHEN t.phase = 'Pending' AND t.deps_open - d.n <= 0
                                    THEN 'Ready' ELSE t.phase END,
                       attempt = CASE WHEN t.phase = 'Pending' AND t.deps_open - d.n <= 0
                                      THEN 1 ELSE t.attempt END,
                       due_at = CASE WHEN t.phase = 'Pending' AND t.deps_open - d.n <= 0
                                     THEN $4 ELSE t.due_at END
                   FROM unnest($1::uuid[], $2::text[], $3::int[]) AS d(eid, name, n)
                   WHERE t.execution_id = d.eid AND t.name = d.name
                   RETURNING t.execution_id, t.name, t.phase, t.attempt, t.pool,
                             t.deps_open""",
                [k[0] for k in keys], [k[1] for k in keys], [countdown[k] for k in keys], now,
            )
            for row in rows:
                if row["phase"] == "Ready" and row["deps_open"] <= 0 and row["attempt"] == 1:
                    result.ready.append(ReadyTask(
                        TaskRef(_sid(row["execution_id"]), row["name"], 1), row["pool"]))

        ids = sorted(touched)
        counters = await conn.fetch(
            """UPDATE executions e
               SET tasks_open = e.tasks_open - c.closed, tasks_failed = e.tasks_failed + c.failed,
                   updated_at = $4
               FROM unnest($1::uuid[], $2::int[], $3::int[]) AS c(eid, closed, failed)
               WHERE e.id = c.eid AND e.phase IN ('Pending', 'Running')
               RETURNING e.id, e.tasks_open, e.tasks_failed, e.tasks_total""",
            ids, [closed[i] for i in ids], [failed[i] for i in ids], now,
        )
        done: dict[str, tuple[str, str]] = {}
        for row in counters:
            phase = execution_phase(
                tasks_open=row["tasks_open"], tasks_failed=row["tasks_failed"], started=True
            )
            if phase in ("Succeeded", "Failed"):
                failed_n = row["tasks_failed"]
                message = (
                    f"{failed_n} of {row['tasks_total']} task(s) failed" if failed_n
                    else f"all {row['tasks_total']} task(s) succeeded or were skipped"
                )
                done[_sid(row["id"])] = (phase, message)
        if done:
            ids = sorted(done)
            await conn.execute(
                """UPDATE executions e SET phase = f.phase, message = f.message,
                       finished_at = $4, updated_at = $4
                   FROM unnest($1::uuid[], $2::text[], $3::text[]) AS f(eid, phase, message)
                   WHERE e.id = f.eid""",
                ids, [done[i][0] for i in ids], [done[i][1] for i in ids], now,
            )
            result.finished = {i: done[i][0] for i in ids}
        return result

    # -- cancellation -------------------------------------------------------------------------

    async def cancel_execution(
        self, execution_id: str, *, reason: str, now: datetime
    ) -> list[str] | None:
        """Cancel an execution that has not finished: it and every open task become ``Cancelled``.

        Returns the names of the tasks cancelled (possibly empty), or None when the
        execution is unknown or already final (cancel is idempotent). History stays.
        """

        async def work(conn: asyncpg.Connection) -> list[str] | None:
            # Task rows first, in name order, then the execution row: the order batch
            # commits lock them in, so a cancel during a storm of commits cannot deadlock
            # with them on the execution row.
            await conn.execute(
                """SELECT 1 FROM tasks WHERE execution_id = $1
                     AND phase IN ('Pending', 'Ready', 'Running', 'Waiting')
                   ORDER BY name FOR UPDATE""",
                execution_id,
            )
            updated = await conn.fetchval(
                """UPDATE executions SET phase = 'Cancelled', message = $2, tasks_open = 0,
                       finished_at = $3, updated_at = $3
                   WHERE id = $1 AND phase IN ('Pending', 'Running') RETURNING id""",
                execution_id, reason, now,
            )
            if updated is None:
                return None
            rows = await conn.fetch(
                """UPDATE tasks SET phase = 'Cancelled', message = $2, finished_at = $3,
                       due_at = NULL, timer_kind = NULL
                   WHERE execution_id = $1
                     AND phase IN ('Pending', 'Ready', 'Running', 'Waiting')
                   RETURNING name""",
                execution_id, reason, now,
            )
            return [r["name"] for r in rows]

        return await self._in_transaction(work)

    # -- the dispatcher's queries ----------------------------------------------------------------

    async def fire_due_timers(self, pool: str, *, now: datetime, limit: int) -> list[ReadyTask]:
        """Move ``Waiting`` tasks whose timer is due to ``Ready``; return them for dispatch.

        A ``retry`` timer starts the next attempt; a ``resume`` timer re-runs the same
        attempt with ``resume_from`` set. ``FOR UPDATE SKIP LOCKED`` lets several
        dispatchers run without waiting on each other.
        """
        rows = await self._pool.fetch(
            """UPDATE tasks t
               SET phase = 'Ready',
                   attempt = CASE WHEN t.timer_kind = 'retry' THEN t.attempt + 1
                                  ELSE t.attempt END,
                   resume_from = CASE WHEN t.timer_kind = 'resume' THEN t.due_at END,
                   timer_kind = NULL, due_at = $2, worker = NULL
               FROM (SELECT execution_id, name FROM tasks
                     WHERE pool = $1 AND phase = 'Waiting' AND due_at <= $2
                     ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) d
               WHERE t.execution_id = d.execution_id AND t.name = d.name
               RETURNING t.execution_id, t.name, t.attempt""",
            pool, now, limit,
        )
        return _ready(rows, pool)

    async def rearm_lost(
        self, pool: str, *, now: datetime, older_than: timedelta, limit: int
    ) -> list[ReadyTask]:
        """Ready tasks not claimed for ``older_than``: re-arm and return them for re-dispatch.

        They are what a crash between a commit and its stream XADD leaves behind. A copy
        that was not lost after all is refused at claim time, so re-dispatch is safe.
        """
        rows = await self._pool.fetch(
            """UPDATE tasks t SET due_at = $2
               FROM (SELECT execution_id, name FROM tasks
                     WHERE pool = $1 AND phase = 'Ready' AND due_at < $3
                     ORDER BY due_at LIMIT $4 FOR UPDATE SKIP LOCKED) d
               WHERE t.execution_id = d.execution_id AND t.name = d.name
               RETURNING t.execution_id, t.name, t.attempt""",
            pool, now, now - older_than, limit,
        )
        return _ready(rows, pool)

    async def next_timer(self, pool: str) -> datetime | None:
        """When the earliest ``Waiting`` timer of ``pool`` falls due, or None."""
        return await self._pool.fetchval(
            "SELECT min(due_at) FROM tasks WHERE pool = $1 AND phase = 'Waiting'", pool
        )

    async def timers_due_before(self, pool: str, until: datetime) -> int:
        """How many ``Waiting`` timers of ``pool`` fall due before ``until``."""
        return await self._pool.fetchval(
            "SELECT count(*) FROM tasks WHERE pool = $1 AND phase = 'Waiting' AND due_at < $2",
            pool, until,
        )


def _ready(rows: list[asyncpg.Record], pool: str) -> list[ReadyTask]:
    """Ready tasks of ``pool`` from rows with ``execution_id``, ``name`` and ``attempt``."""
    return [ReadyTask(TaskRef(_sid(r["execution_id"]), r["name"], r["attempt"]), pool)
            for r in rows]
