"""The engine's Python API: what the operator (or any program) calls.

Submit executions (idempotent on a caller-supplied key), read their recorded state,
cancel, suspend, resume or retry them from the failed step, and follow their changes. Reads
come from PostgreSQL, the truth; change notifications come from Redis pub/sub, which may drop
messages, so a follower should re-read (:meth:`Engine.get`) on each notification and
periodically (:meth:`Engine.changed_since`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .cache import Cache
from .cancellation import Canceller
from .catalogue import AdvertisedType, Catalogues, PoolCatalogue
from .children import settle_outputs
from .compiler import (
    WORKFLOW_TYPE,
    ChildWorkflowsNotFound,
    CompiledWorkflow,
    InvalidInputs,
    PoolFacts,
    Problem,
    TaskTypesUnavailable,
    Unavailable,
    WorkflowFacts,
    WorkflowInvalid,
    compile_workflow,
    facts_of_raw,
)
from .concurrency import Concurrency, Policy, replaced_message
from .connections import database_pool_options, database_ssl, redis_client
from .events import Event, add_message, add_publish, subscribe
from .health import start_health_server
from .keys import Keys
from .model import MAX_DEADLINE_SECONDS, WorkflowSpec
from .phases import ExecutionPhase, TaskPhase
from .priorities import check_priority
from .queue import Backlog, Queue
from .redis_policy import check_eviction_policy
from .settings import EngineSettings
from .store import AttemptState, ExecutionHeader, ExecutionState, ReadyTask, Store, TaskState
from .store.lifecycle import Retried
from .store.records import Created
from .workflows import WorkflowCatalog

#: What callers outside the engine (the operator) may use: the client, its results and
#: records, the compiled workflow and the errors it raises. Everything else is internal.
__all__ = [
    "AdvertisedType",
    "AttemptState",
    "Backlog",
    "ChildWorkflowsNotFound",
    "CompiledWorkflow",
    "Concurrency",
    "Engine",
    "Event",
    "ExecutionState",
    "InvalidInputs",
    "Policy",
    "PoolCatalogue",
    "PoolFacts",
    "PoolQueues",
    "Retried",
    "Submission",
    "TaskState",
    "TaskTypesUnavailable",
    "Unavailable",
    "WorkflowFacts",
    "WorkflowInvalid",
    "facts_of_raw",
    "start_health_server",
]


log = logging.getLogger(__name__)

#: Longest wait, in seconds, for the dispatch of a committed execution to Redis before
#: :meth:`Engine.submit` returns anyway (the dispatcher then recovers it from PostgreSQL).
DISPATCH_TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class Submission:
    """Result of :meth:`Engine.submit`: the execution id, and whether this call created it.

    For a run created now: ``queued`` when it waits in its concurrency group's queue,
    ``forbidden`` the message it failed with (``policy: Forbid``), ``replaced`` the ids of
    the runs it cancelled (``policy: Replace``).
    """

    execution_id: str
    created: bool
    queued: bool = False
    forbidden: str | None = None
    replaced: tuple[str, ...] = ()


class Engine:
    """A client of the engine's state. Create with :meth:`connect`, end with :meth:`close`."""

    def __init__(self, store: Store, redis: Redis, keys: Keys, *,
                 settings: EngineSettings | None = None) -> None:
        # Limits come from ``settings`` (defaults when None, without reading the environment).
        limits = settings if settings is not None else EngineSettings.model_construct()
        self.store = store
        self.redis = redis
        self.keys = keys
        self.queue = Queue(redis, keys)
        self.cache = Cache(redis, keys)
        self.catalog = WorkflowCatalog(store, self.cache, max_size=limits.workflow_cache_size)
        self.catalogues = Catalogues(redis, keys)
        self.max_inputs_bytes = limits.max_inputs_bytes
        self._groups: set[str] = set()

    @classmethod
    async def connect(cls, settings: EngineSettings | None = None, **overrides: Any) -> Engine:
        """Connect to PostgreSQL (applying migrations) and Redis from ``settings``.

        ``overrides`` replace settings fields (``redis_url=...``, ``key_prefix=...``).
        Raises asyncpg / redis-py connection errors when a server cannot be reached.
        Checks Redis's ``maxmemory-policy`` once and warns when it can evict Conveyor's
        keys (:mod:`conveyor_engine.redis_policy`).

        Every statement and connect of the returned engine's PostgreSQL pool is bounded by
        ``CONVEYOR_DATABASE_TIMEOUT_SECONDS`` (:func:`~conveyor_engine.connections.
        database_pool_options`), as a worker's are, so a black-holed or hung PostgreSQL
        raises ``TimeoutError`` in the caller (an operator handler) instead of blocking it
        forever. Migrations run first on a connection of their own, whose connect is bounded
        the same way but whose statements are not (a migration may take longer).
        """
        if settings is None:
            settings = EngineSettings(**overrides)  # type: ignore[arg-type]
        elif overrides:
            settings = settings.model_copy(update=overrides)
        if settings.migrate_on_start:
            migrator = await Store.connect(settings.database_url, min_size=1, max_size=1,
                                           ssl=database_ssl(settings),
                                           timeout=settings.database_timeout_seconds)
            await migrator.close()
        store = await Store.connect(settings.database_url, apply_migrations=False,
                                    ssl=database_ssl(settings),
                                    **database_pool_options(settings))
        redis = redis_client(settings)
        try:
            await redis.ping()
        except Exception:
            await store.close()
            await redis.aclose()
            raise
        await check_eviction_policy(redis, where="the engine's Redis")
        return cls(store, redis, Keys(settings.key_prefix), settings=settings)

    async def close(self) -> None:
        """Close both connections."""
        await self.store.close()
        await self.redis.aclose()

    async def register(self, name: str, spec: WorkflowSpec | dict[str, Any], *,
                       pools: dict[str, PoolFacts] | None = None,
                       workflows: dict[str, WorkflowFacts] | None = None) -> CompiledWorkflow:
        """Compile ``spec`` and store the version in PostgreSQL and Redis by content hash.

        Raises :class:`conveyor_engine.compiler.WorkflowInvalid` naming each task and
        field at fault. Compiles in a thread, so a large workflow never stalls the caller's
        event loop (the operator's watches, a worker's lease renewal).

        ``pools``: what the pools advertise and mount, by pool name (:class:`PoolFacts`,
        built from :meth:`pool_catalogues`); types that are not built in are then checked
        against their pool's advertised schemas, and raise :class:`TaskTypesUnavailable`
        (nothing stored) when a pool not yet settled does not serve them yet.

        ``workflows``: what is known of other workflows, by engine name
        (:class:`WorkflowFacts`, e.g. :func:`facts_of_raw` of each); ``workflow`` tasks are
        then checked against them (a cycle and inputs the child refuses: invalid), and a
        literal child not among them raises :class:`ChildWorkflowsNotFound` (nothing
        stored: the caller waits for it).
        """
        workflow = await asyncio.to_thread(compile_workflow, name, spec, pools=pools,
                                           workflows=workflows)
        # A rate limit is global: a declaration contradicting another workflow's is a
        # compile problem naming both (never a silent pick).
        conflicts = await self.store.declare_rate_limits(name, workflow.spec.rate_limits)
        if conflicts:
            raise WorkflowInvalid(name, [Problem(None, f"rateLimits[{i}]", message)
                                         for i, message in conflicts])
        await self.store.save_workflow(workflow.content_hash, name, workflow.to_json())
        await self.cache.put_workflow(workflow.content_hash, workflow.to_json())
        self.catalog.remember(workflow)
        return workflow

    async def submit(
        self,
        workflow: CompiledWorkflow,
        inputs: dict[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        suspended: bool = False,
        priority: int = 0,
        concurrency: Concurrency | None = None,
        deadline_seconds: int | None = None,
        scheduled_time: datetime | None = None,
        parent: tuple[str, str, int] | None = None,
        depth: int = 0,
    ) -> Submission:
        """Start an execution of ``workflow`` with ``inputs`` (``suspended``: created
        suspended, so no task starts until :meth:`resume`; as a Job created suspended).

        ``priority`` (-1000..1000, default 0) picks its tasks' dispatch band
        (:mod:`conveyor_engine.priorities`). ``concurrency`` puts the run in that
        concurrency group (:mod:`conveyor_engine.concurrency`) instead of the one its
        workflow's ``spec.concurrency`` gives (None: the workflow's, if any): how a
        Schedule's ``concurrencyPolicy`` limits its own runs. A run of a group may be
        queued (:attr:`Submission.queued`), refused at once (``Forbid``: it is recorded
        ``Failed`` with reason ``ConcurrencyForbidden``) or replace older runs
        (``Replace``: they are ``Cancelled`` with reason ``ConcurrencyReplaced``).
        Raises :class:`InvalidInputs` naming ``priority`` when it is out of range, and
        naming ``concurrency.key`` when the key cannot be evaluated with these inputs.

        With an ``idempotency_key`` (for example a Kubernetes object's uid), a repeated call
        returns the execution the first call created, whatever its state, and starts
        nothing. Raises :class:`conveyor_engine.compiler.InvalidInputs` naming the input at
        fault, also when the inputs serialised as JSON are larger than
        ``CONVEYOR_MAX_INPUTS_BYTES`` (they are stored in PostgreSQL and cached in Redis).

        Once the execution is committed to PostgreSQL this returns it, whatever Redis does:
        if the dispatch to the stream fails (Redis down, or slower than
        :data:`DISPATCH_TIMEOUT_SECONDS`), the workers' dispatcher re-dispatches the ready
        tasks from PostgreSQL after ``CONVEYOR_DISPATCH_GRACE_SECONDS``. So an exception
        always means nothing was created (PostgreSQL or, before the commit, Redis failed),
        and retrying cannot start a second run; use an idempotency key to make a retry
        after an *unknown* result (a lost reply, a crash of the caller) safe too.

        ``deadline_seconds`` (an Execution's ``spec.activeDeadlineSeconds``; None: the
        workflow's, if any) bounds the run's main tasks, counted from its admission: when
        it passes, open tasks are cancelled (running ones interrupted), the run ends
        ``Failed`` with reason ``DeadlineExceeded`` and its handlers still run (enforced
        by the dispatcher of the workflow's pool; :mod:`conveyor_engine.handlers`).
        ``scheduled_time`` (aware datetime): the Schedule tick that created the run, seen
        as ``execution.scheduledTime``. ``parent`` ``(execution id, task, attempt)`` and
        ``depth`` link a child run to the ``workflow`` task that starts it
        (:mod:`conveyor_engine.children`).
        """
        if deadline_seconds is None:
            deadline_seconds = workflow.deadline_seconds
        if deadline_seconds is not None and not 1 <= deadline_seconds <= MAX_DEADLINE_SECONDS:
            raise InvalidInputs([Problem(None, "activeDeadlineSeconds",
                                         f"must be 1 to {MAX_DEADLINE_SECONDS} seconds")])
        resolved = workflow.resolve_inputs(inputs, max_bytes=self.max_inputs_bytes)
        try:
            check_priority(priority)
        except ValueError as exc:
            raise InvalidInputs([Problem(None, "priority", str(exc).partition(": ")[2])]
                                ) from None
        if concurrency is None:
            concurrency = workflow.concurrency(resolved)
        if idempotency_key is not None:
            existing = await self.store.find_execution_by_key(idempotency_key)
            if existing is not None:
                return Submission(existing, False)
        tasks = [(t.name, t.type, t.initial_deps, t.spec.pool or workflow.pool)
                 for t in workflow.tasks.values()]
        for pool in {task[3] for task in tasks} - self._groups:
            await self.queue.ensure_group(pool)
            self._groups.add(pool)
        now = datetime.now(UTC)
        made = await self.store.create_execution(
            workflow_name=workflow.name,
            workflow_hash=workflow.content_hash,
            spec_json=workflow.to_json(),
            pool=workflow.pool,
            inputs=resolved,
            tasks=tasks,
            idempotency_key=idempotency_key,
            now=now,
            suspended=suspended,
            concurrency=concurrency,
            priority=priority,
            stages={t.name: t.stage for t in workflow.tasks.values() if t.handler},
            deadline_seconds=deadline_seconds,
            parent=parent,
            depth=depth,
            scheduled_time=scheduled_time,
        )
        execution_id = made.execution_id
        if made.created:
            phase = ExecutionPhase.FAILED if made.forbidden else ExecutionPhase.PENDING
            header = ExecutionHeader(execution_id, workflow.name, workflow.content_hash,
                                     workflow.pool, resolved, phase, now, scheduled_time)
            try:
                await asyncio.wait_for(self._dispatch_created(header, workflow, made,
                                                             concurrency),
                                       DISPATCH_TIMEOUT_SECONDS)
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("execution %s is committed but its dispatch to Redis failed "
                            "(%s: %s); the dispatcher re-dispatches it from PostgreSQL",
                            execution_id, type(exc).__name__, exc)
        if made.cancelled and concurrency is not None:
            # Runs replaced by this one close their children too (TERMINATE), as a cancel
            # does; the submission is committed, so a failure here is logged, not raised.
            why = replaced_message(concurrency.group)
            for victim in made.cancelled:
                try:
                    await self._cancel_descendants(victim, why)
                except Exception as exc:
                    log.warning("replaced execution %s: cancelling its child runs failed "
                                "(%s: %s)", victim, type(exc).__name__, exc)
        return Submission(execution_id, made.created, queued=made.queued,
                          forbidden=made.forbidden, replaced=tuple(made.cancelled))

    async def _dispatch_created(self, header: ExecutionHeader, workflow: CompiledWorkflow,
                                made: Created, concurrency: Concurrency | None) -> None:
        """Cache a new execution's header and workflow, add the ready tasks to the stream,
        tell workers to stop the runs it replaced, and announce it all, in one pipelined
        round trip."""
        events = [Event(header.execution_id, header.phase)]
        replaced = replaced_message(concurrency.group) if concurrency is not None else ""
        async with self.redis.pipeline(transaction=False) as pipe:
            self.cache.add_header(pipe, header)
            self.cache.add_workflow(pipe, workflow.content_hash, workflow.to_json())
            self.queue.add_dispatch(pipe, made.ready)
            if made.forbidden:
                self.cache.add_finished(pipe, header.execution_id)
            for victim, tasks in made.cancelled.items():
                add_message(pipe, self.keys.control(), orjson.dumps(
                    {"cancel": victim, "reason": replaced}))
                self.cache.add_finished(pipe, victim)
                events += [Event(victim, ExecutionPhase.CANCELLED)]
                events += [Event(victim, TaskPhase.CANCELLED, name) for name in tasks]
            events += [Event(r.ref.execution_id, ExecutionPhase.PENDING) for r in made.ready
                       if r.ref.execution_id != header.execution_id]
            add_publish(pipe, self.keys, events)
            await pipe.execute()

    async def get(self, execution_id: str) -> ExecutionState | None:
        """The recorded state of an execution, tasks in workflow (topological) order, with
        its declared outputs once it Succeeded (evaluated and stored by the first reader:
        :func:`conveyor_engine.children.settle_outputs`) and the child runs of its
        ``workflow`` tasks."""
        state = await self.store.get_execution(execution_id)
        if state is None:
            return None
        try:
            workflow = await self.catalog.get(state.workflow_hash, state.workflow_name)
        except LookupError:
            return state
        if (state.phase == ExecutionPhase.SUCCEEDED and state.outputs is None
                and workflow.spec.outputs):
            await settle_outputs(self.store, workflow, state.execution_id)
            state = await self.store.get_execution(execution_id) or state
        children = {}
        if any(t.type == WORKFLOW_TYPE for t in workflow.tasks.values()):
            children = await self.store.children_by_task(execution_id)
        order = {name: i for i, name in enumerate(workflow.tasks)}
        tasks = tuple(sorted(state.tasks, key=lambda t: order.get(t.name, len(order))))
        return replace(state, tasks=tasks, children=children)

    async def find(self, idempotency_key: str) -> str | None:
        """The id of the execution submitted with ``idempotency_key``, or None if none was."""
        return await self.store.find_execution_by_key(idempotency_key)

    async def attempts(self, execution_id: str) -> list[AttemptState]:
        """Every finished attempt of an execution (the full history)."""
        return await self.store.get_attempts(execution_id)

    async def cancel(self, execution_id: str, reason: str = "cancelled by request") -> bool:
        """Cancel an execution: open tasks become Cancelled, running ones are interrupted.

        Returns False when the execution is unknown or already final. History is kept.
        Its open child runs (``workflow`` tasks), theirs and so on are cancelled too
        (Temporal's parent close policy ``TERMINATE``), with a reason naming the parent.
        """
        descendants = await self.store.open_descendants(execution_id)
        cancelled_self = await self._cancel_one(execution_id, reason)
        await self._cancel_descendants(execution_id, reason, descendants)
        return cancelled_self

    async def _cancel_descendants(self, execution_id: str, reason: str,
                                  descendants: list[str] | None = None) -> None:
        """Cancel the open child runs of ``execution_id``, theirs and so on (read now unless
        given), with a reason naming the parent."""
        if descendants is None:
            descendants = await self.store.open_descendants(execution_id)
        for child in descendants:
            await self._cancel_one(child, f"parent execution {execution_id} was cancelled: "
                                          f"{reason}")

    async def _cancel_one(self, execution_id: str, reason: str) -> bool:
        """Cancel one execution (see :meth:`cancel`), not its children."""
        return await Canceller(self.store, self.redis, self.keys, self.cache,
                               self.queue).cancel_one(execution_id, reason)

    async def suspend(self, execution_id: str) -> bool:
        """Suspend an execution: no task of it starts until :meth:`resume`; tasks already
        running finish (Kubernetes Job's ``suspend`` stops pods; Conveyor lets an attempt
        in progress end, since its side effects may be half done otherwise).

        Returns False when it is unknown or already suspended (idempotent).
        """
        changed = await self.store.set_suspended(execution_id, True, now=datetime.now(UTC))
        if changed is None:
            return False
        await self._announce(execution_id, [])
        return True

    async def resume(self, execution_id: str) -> bool:
        """Resume a suspended execution: its ready tasks are dispatched again.

        Returns False when it is unknown or not suspended (idempotent).
        """
        ready = await self.store.set_suspended(execution_id, False, now=datetime.now(UTC))
        if ready is None:
            return False
        await self._announce(execution_id, ready)
        return True

    async def retry(self, execution_id: str, *, suspended: bool = False) -> Retried | None:
        """Retry a ``Failed`` or ``Cancelled`` execution from its failed step, in place.

        Tasks that succeeded keep their recorded outputs and do not run again; failed,
        skipped and cancelled tasks run again at their next attempt number (every earlier
        attempt stays in :meth:`attempts`), each with a fresh retry budget. The execution
        keeps its id and is ``Running`` again (``suspended`` as given). Returns what was
        retried, or None when the execution is unknown, open, succeeded, or its workflow
        version is gone. Not idempotent by itself: the operator acts once per increase of
        the Execution's ``spec.retry``.
        """
        header = (await self.store.execution_headers([execution_id])).get(execution_id)
        if header is None:
            return None
        try:
            workflow = await self.catalog.get(header.workflow_hash, header.workflow_name)
        except LookupError:
            return None
        retried = await self.store.retry_execution(
            execution_id, depends_on={n: t.depends_on for n, t in workflow.tasks.items()},
            now=datetime.now(UTC), suspended=suspended, handlers=frozenset(workflow.handlers))
        if retried is None:
            return None
        for pool in {r.pool for r in retried.ready} - self._groups:
            await self.queue.ensure_group(pool)
            self._groups.add(pool)
        # The cached outputs of the tasks that run again are stale and the finished run's
        # short expiry must go: drop the outputs (read back from PostgreSQL on a miss) and
        # cache the header for a running execution again.
        await self.redis.delete(self.keys.outputs(execution_id))
        await self._announce(execution_id, list(retried.ready),
                             header=replace(header, phase=ExecutionPhase.RUNNING))
        return retried

    async def _announce(self, execution_id: str, ready: list[ReadyTask], *,
                        header: ExecutionHeader | None = None) -> None:
        """Dispatch ``ready`` and publish a change of ``execution_id`` in one round trip.

        Redis failing here loses nothing: the tasks are ``Ready`` in PostgreSQL and the
        dispatcher re-dispatches them after ``CONVEYOR_DISPATCH_GRACE_SECONDS``, and the
        operator's resync reads the change.
        """
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                if header is not None:
                    self.cache.add_header(pipe, header)
                self.queue.add_dispatch(pipe, ready)
                add_publish(pipe, self.keys, [Event(execution_id, ExecutionPhase.RUNNING)])
                await pipe.execute()
        except (RedisError, OSError) as exc:
            log.warning("execution %s changed but Redis did not take the news (%s: %s); "
                        "the dispatcher and the resync recover it", execution_id,
                        type(exc).__name__, exc)

    async def events(self) -> AsyncIterator[list[Event]]:
        """Batches of state-change events as published (see :mod:`conveyor_engine.events`)."""
        async for batch in subscribe(self.redis, self.keys):
            yield batch

    async def changed_since(self, since: datetime, limit: int = 1000) -> list[str]:
        """Ids of executions whose recorded state changed after ``since`` (for resync)."""
        return await self.store.executions_updated_since(since, limit)

    # -- Reads for the operator's pool scaler and status (no engine internals needed) --

    async def workflow(self, content_hash: str, name: str) -> CompiledWorkflow:
        """The compiled workflow stored under ``content_hash`` (``name`` is its
        ``namespace/name``, for messages), from memory, Redis or PostgreSQL.

        Raises ``LookupError`` when no layer has it (only a damaged database causes that).
        """
        return await self.catalog.get(content_hash, name)

    async def pool_catalogues(self, pools: list[str]) -> dict[str, PoolCatalogue]:
        """What each of ``pools`` serves now (:class:`PoolCatalogue`: live advertising
        workers, the union of their task types, the last known types), from Redis.
        Raises redis-py's errors when Redis cannot be reached."""
        return {pool: await self.catalogues.read(pool) for pool in pools}

    async def waiting_counts(self) -> dict[tuple[str, str], int]:
        """Submitted executions that wait, by ``(reason, pool)``: ``ConcurrencyLimit``
        (queued in their concurrency group) and ``Suspended``; for the operator's
        ``conveyor_executions_waiting`` gauge. One aggregate query over open runs."""
        return await self.store.waiting_counts()

    async def timers_due_before(self, pool: str, until: datetime) -> int:
        """How many durable timers (``Waiting`` tasks) of ``pool`` fall due before ``until``
        (an aware datetime): work a worker must soon be there to fire."""
        return await self.store.timers_due_before(pool, until)

    def pool_queues(self, redis_url: str | None = None) -> PoolQueues:
        """A reader of pool queues' load on the engine's own Redis (``redis_url`` None) or on
        the Redis at ``redis_url`` (a pool with a Redis of its own, same key prefix).

        Close it with :meth:`PoolQueues.close`; that closes only a connection it opened.
        """
        if redis_url is None:
            return PoolQueues(self.redis, self.keys, owned=False)
        # Short timeouts: a pool's Redis that stops answering must not stall the scaler.
        # Any form of CONVEYOR_REDIS_URL (one server, Sentinel, Cluster) is accepted here.
        redis = redis_client(EngineSettings.model_construct(redis_ca_cert=None), redis_url,
                             socket_connect_timeout=2, socket_timeout=2)
        return PoolQueues(redis, self.keys, owned=True)


class PoolQueues:
    """Load of pool queues on one Redis: what is queued and in flight, and with whom.

    Made by :meth:`Engine.pool_queues`. Methods raise redis-py's ``ConnectionError`` /
    ``TimeoutError`` (or ``OSError``) when that Redis cannot be reached.
    """

    def __init__(self, redis: Redis, keys: Keys, *, owned: bool) -> None:
        self._redis = redis
        self._queue = Queue(redis, keys)
        self._owned = owned

    async def backlog(self, pool: str) -> Backlog:
        """Entries of ``pool`` not yet delivered (``queued``) and delivered but not acked
        (``in_flight``); zeros when the pool's stream does not exist yet."""
        return await self._queue.backlog(pool)

    async def in_flight_by_consumer(self, pool: str) -> dict[str, int]:
        """Unacknowledged entries of ``pool`` per stream consumer name
        (``<pod>-<pid>-<hex>``, as workers name themselves)."""
        return await self._queue.in_flight_by_consumer(pool)

    async def close(self) -> None:
        """Close the connection if :meth:`Engine.pool_queues` opened it for this reader."""
        if self._owned:
            await self._redis.aclose()
