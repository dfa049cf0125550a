"""The worker process's main object: claim, run, commit, renew leases, reclaim, shut down.

Loops, all in one asyncio event loop:

* fetch: ``XREADGROUP`` as many entries as there are free slots, claim them in PostgreSQL
  (one statement per batch), load their context, start one asyncio task each;
* committer: batches outcomes into transactions, then acks and dispatches (see
  :mod:`.committer`);
* leases: two independent loops renew the stream lease of every unacknowledged entry
  (``XCLAIM ... JUSTID``) and the PostgreSQL lease of every running claim; neither waits on
  or is skipped by the other's failure, each call is bounded by a timeout, and after a
  failure each retries within half a second so leases are renewed as soon as a store is
  back (:mod:`.contact` keeps takeovers off until then);
* reclaim: takes over entries whose lease expired (their worker died), dead-lettering those
  delivered too often (see :mod:`.reclaim`);
* dispatcher: durable timers and lost-dispatch recovery (one worker per pool at a time);
* control: listens for cancellations and cancels the affected running tasks.

On :meth:`Worker.stop` (SIGTERM) the worker stops claiming, lets running tasks finish
within the grace period, hands the rest back to the queue, flushes its outcomes and exits.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import logging
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from redis.asyncio import Redis

from .. import dependencies, tasktypes
from ..api import Engine
from ..cache import Cache
from ..catalogue import Catalogues
from ..children import ChildRunner
from ..events import Event, add_publish
from ..keys import Keys
from ..metrics import DEPENDENCY_UP, TASK_ATTEMPTS, TASK_DURATION
from ..outputs import UnstorableOutput, storable
from ..phases import ExecutionPhase, TaskPhase
from ..queue import Delivery, Queue
from ..retention import RetentionPolicy
from ..settings import EngineSettings
from ..store import Claimed, ReadyTask, Store
from ..tasktypes.base import Failed, Resources, Succeeded, TaskContext
from ..tasktypes.http_egress import guarded_client
from ..tokenbucket import TokenBucket
from ..workflows import WorkflowCatalog
from .advertise import Advertiser
from .committer import Committer, Finished
from .contact import Contact
from .context import ContextLoader, Job, LoadFailure
from .dispatcher import Dispatcher
from .execute import execute, secrets_context
from .gate import Gate, Passed
from .inflight import InFlight, Running, Stop
from .mounts import MountedSecrets
from .outcome import lock_lost_transition, outcome_label, outcome_record
from .reclaim import Reclaimer

log = logging.getLogger(__name__)

#: Threads beyond one per slot: a cancelled plain function that has not returned yet keeps
#: its thread after its slot is given to the next task (function.CANCEL_GRACE_SECONDS).
SPARE_TASK_THREADS = 4


def task_threads(concurrency: int) -> int:
    """Threads of the pool plain (non-async) task functions run in: one per slot
    (``CONVEYOR_CONCURRENCY``) plus :data:`SPARE_TASK_THREADS`, so ``concurrency`` plain
    functions can run at once. Threads start only when needed.

    Raises ``ValueError`` when ``concurrency`` is below 1.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency: expected at least 1, got {concurrency}")
    return concurrency + SPARE_TASK_THREADS


class Worker:
    """One engine worker process. ``await run()`` until :meth:`stop` is called."""

    def __init__(self, settings: EngineSettings, store: Store, redis: Redis) -> None:
        self.settings = settings
        self.store = store
        self.redis = redis
        self.keys = Keys(settings.key_prefix)
        self.pool = settings.pool
        self.consumer = f"{settings.worker_id}-{os.getpid()}-{secrets.token_hex(3)}"
        self.queue = Queue(redis, self.keys)
        self.cache = Cache(redis, self.keys)
        self.catalog = WorkflowCatalog(store, self.cache, max_size=settings.workflow_cache_size)
        self.loader = ContextLoader(store, self.cache, self.catalog)
        # What `workflow` tasks start and read their child runs with (sub-workflows).
        self.children = ChildRunner(
            Engine(store, redis, self.keys, settings=settings),
            max_depth=settings.max_workflow_depth,
            recheck_seconds=settings.child_recheck_seconds)
        self.committer = Committer(
            store=store, redis=redis, keys=self.keys, queue=self.queue, cache=self.cache,
            batch_size=settings.batch_size, on_acked=self._acked,
        )
        self.inflight = InFlight()
        # Secrets are read before anything runs; their redactor covers logs and outcomes.
        self.secrets = MountedSecrets(settings.secrets_dir, settings.secrets_refresh_seconds)
        # What this worker can run, advertised for its pool (issue 11 item 2).
        self.advertiser = Advertiser(Catalogues(redis, self.keys), tasktypes.registry(),
                                     pool=self.pool, worker=self.consumer,
                                     ttl_seconds=settings.lease_seconds,
                                     secrets=self.secrets.names)
        self.gate = Gate(store=store, bucket=TokenBucket(redis, self.keys),
                         worker=self.consumer, lock_lease_seconds=settings.lock_lease_seconds)
        self.contact = Contact()
        self.dispatcher = Dispatcher(
            store=store, redis=redis, keys=self.keys, queue=self.queue, pool=self.pool,
            interval=settings.dispatch_interval_seconds,
            grace=settings.dispatch_grace_seconds, lease=settings.lease_seconds,
            catalog=self.catalog, cache=self.cache, contact=self.contact,
            retention=RetentionPolicy(settings.retention_days,
                                      settings.retention_interval_seconds,
                                      settings.retention_batch_size),
        )
        self._stopping = asyncio.Event()
        self._reads = 0
        self.reclaimer = Reclaimer(
            store=store, queue=self.queue, loader=self.loader, committer=self.committer,
            inflight=self.inflight, pool=self.pool, consumer=self.consumer,
            slots=settings.concurrency, lease_seconds=settings.lease_seconds,
            max_deliveries=settings.max_deliveries, start=self._start,
            fail=self._finish_failed_load, catalog=self.catalog, contact=self.contact,
            hand_back=self._hand_back,
        )
        # Set when the background loops must end. They also check it themselves: redis-py
        # can swallow a cancellation that lands inside a command (redis/redis-py#2028).
        self._closing = asyncio.Event()
        self._http: httpx.AsyncClient | None = None
        self._serving = False
        self._resources: Resources | None = None
        # One state per dependency: loops report outages to it instead of logging a
        # traceback per retry; readiness and conveyor_dependency_up follow it.
        self.dependencies = dependencies.DependencyTracker(
            quiet=settings.dependency_check_seconds, clock=time.monotonic, gauge=DEPENDENCY_UP)
        dependencies.install(self.dependencies)

    # -- public --------------------------------------------------------------------------

    @property
    def running_count(self) -> int:
        """Attempts currently running in this process."""
        return len(self.inflight)

    def is_ready(self) -> bool:
        """True while the worker is serving, not stopping, and reaches Redis and PostgreSQL
        (the readiness probe)."""
        return self._serving and not self._stopping.is_set() and self.dependencies.up()

    def stop(self) -> None:
        """Begin a graceful shutdown (safe to call from a signal handler, more than once)."""
        self._stopping.set()
        self.inflight.wake()  # a fetch loop waiting for a free slot must see the stop

    async def run(self) -> None:
        """Serve the pool until :meth:`stop`; then shut down gracefully and return."""
        await self.queue.ensure_group(self.pool)
        await self.advertiser.publish()
        # Every connection of http tasks (each redirect hop too) passes the egress guard;
        # a task's own timeout replaces the client's per request.
        self._http = guarded_client(self.settings.egress_policy(),
                                    timeout=self.settings.http_timeout_seconds)
        threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=task_threads(self.settings.concurrency), thread_name_prefix="task")
        self._resources = Resources(http=self._http,
                                    max_output_bytes=self.settings.max_output_bytes,
                                    threads=threads)
        background = [
            asyncio.create_task(self.committer.run(), name="committer"),
            asyncio.create_task(self._renew_loop("redis", self._renew_stream), name="lease"),
            asyncio.create_task(self._renew_loop("postgresql", self._renew_database),
                                name="lease-db"),
            asyncio.create_task(self.dispatcher.run(self._closing), name="dispatcher"),
            asyncio.create_task(self._control_loop(), name="control"),
            asyncio.create_task(self._probe_loop(), name="probe"),
            asyncio.create_task(self.advertiser.run(self._closing), name="advertise"),
        ]
        takers = [
            asyncio.create_task(self._fetch_loop(), name="fetch"),
            asyncio.create_task(self.reclaimer.run(self._stopping), name="reclaim"),
        ]
        self._serving = True
        log.info("worker %s serving pool %r with %d slots", self.consumer, self.pool,
                 self.settings.concurrency)
        try:
            await self._stopping.wait()
        finally:
            await self.advertiser.withdraw()  # takes no more work: stop saying it does
            # The claiming loops end on their own within a second (a blocking read lasts
            # at most that long); cancelling one in the middle of a claim would strand the
            # entries it just read until their leases lapse.
            await _cancel_all(takers, timeout=5.0, graceful=True)
            await self._finish_running()
            try:
                # Outcomes not committed by then stay unacknowledged: their leases lapse
                # and another worker takes them over. Never hang past the grace period.
                await asyncio.wait_for(self.committer.drain(),
                                       self.settings.shutdown_grace_seconds + 10)
            except TimeoutError:
                log.error("outcomes still uncommitted at exit; their leases will lapse")
            self._closing.set()
            await _cancel_all(background)
            await self._http.aclose()
            # Outcomes are flushed: no waiting here for a thread that ignored its cancellation
            # (the interpreter still joins it at exit, as it did any to_thread thread).
            threads.shutdown(wait=False, cancel_futures=True)
            log.info("worker %s stopped", self.consumer)

    # -- claiming --------------------------------------------------------------------------

    async def _fetch_loop(self) -> None:
        while not self._stopping.is_set():
            free = self.inflight.free(self.settings.concurrency)
            if free <= 0:
                self.inflight.slot_freed.clear()
                await self.inflight.slot_freed.wait()
                continue
            try:
                self._reads += 1  # the weighted schedule of the priority bands
                deliveries, malformed = await self.queue.read(
                    self.pool, self.consumer, count=min(free, self.settings.batch_size),
                    block_ms=1000, tick=self._reads,
                )
                for message_id in malformed:
                    self.inflight.hold_unrun(message_id)
                    self.committer.submit(Finished(self.pool, message_id, None))
                if deliveries:
                    await self._start(deliveries)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                dependencies.report(log, exc, "fetching work failed; retrying in 1s")
                await asyncio.sleep(1.0)

    async def _start(self, deliveries: list[Delivery]) -> None:
        """Claim ``deliveries`` in PostgreSQL and start the accepted ones (each carries its
        claim's fencing token to the commit)."""
        for delivery in deliveries:
            self.inflight.hold(delivery)
        try:
            claims = await self.store.claim(
                [d.ref for d in deliveries], worker=self.consumer, now=_now(),
                lease=timedelta(seconds=self.settings.lease_seconds))
        except BaseException:
            self.inflight.abandon([d.message_id for d in deliveries])
            raise
        by_ref = {c.ref: c for c in claims}
        accepted: list[tuple[Delivery, Claimed]] = []
        for delivery in deliveries:
            claim = by_ref.get(delivery.ref)
            if claim is None:  # duplicate, cancelled or already done: drop the entry
                self.inflight.finish(delivery.message_id)
                self.committer.submit(Finished(self.pool, delivery.message_id, None))
            else:
                self.inflight.get(delivery.message_id).claim = claim.claim
                accepted.append((delivery, claim))
        if not accepted:
            return
        message_of = {claim.ref: delivery.message_id for delivery, claim in accepted}
        try:
            jobs, failures = await self.loader.load([claim for _, claim in accepted])
        except Exception as exc:
            dependencies.report(log, exc, "loading the context of %d claimed task(s) failed; "
                                "handing them back", len(accepted))
            await self._hand_back([d for d, _ in accepted])
            return
        for failure in failures:
            self._finish_failed_load(message_of[failure.claimed.ref], failure)
        for job in jobs:
            entry = self.inflight.get(message_of[job.claimed.ref])
            entry.task = asyncio.create_task(self._run_job(entry, job))
        await self._publish_started(claims)

    async def _publish_started(self, claims: list[Claimed]) -> None:
        events = [Event(c.ref.execution_id, TaskPhase.RUNNING, c.ref.task, c.ref.attempt)
                  for c in claims]
        events += [Event(c.ref.execution_id, ExecutionPhase.RUNNING)
                   for c in claims if c.execution_started]
        async with self.redis.pipeline(transaction=False) as pipe:
            add_publish(pipe, self.keys, events)
            await pipe.execute()

    def _finish_failed_load(self, message_id: str, failure: LoadFailure) -> None:
        """Record a claimed attempt that cannot run as Failed (not retryable)."""
        log.error("cannot run %s: %s", failure.claimed.ref, failure.error)
        workflow = failure.workflow
        now = _now()
        record = outcome_record(
            failure.claimed.ref, Failed(failure.error, retryable=False), worker=self.consumer,
            started=now, finished=now, workflow=workflow,
            task=workflow.tasks.get(failure.claimed.ref.task) if workflow else None,
            retries=False, claim=failure.claimed.claim)
        self.inflight.finish(message_id)
        self.committer.submit(Finished(self.pool, message_id, record))

    # -- running ----------------------------------------------------------------------------

    async def _run_job(self, entry: Running, job: Job) -> None:
        ref = job.claimed.ref
        assert self._resources is not None
        ctx = TaskContext(ref.execution_id, ref.task, ref.attempt, self._resources,
                          resumed_from=job.claimed.resume_from, secrets=self.secrets.view(),
                          children=self.children)
        started, clock = _now(), time.perf_counter()
        record_of = functools.partial(outcome_record, ref, worker=self.consumer, started=started,
                                      workflow=job.workflow, task=job.task,
                                      claim=job.claimed.claim,
                                      attempt_base=job.claimed.attempt_base)
        try:
            # The gate evaluates `when` too, so it sees the secrets as execute() does.
            prepared = secrets_context(job.task, job.context, ctx.secrets)
            if isinstance(prepared, Failed):
                gated: Any = prepared
            else:
                job = dataclasses.replace(job, context=prepared)
                gated = await self._gate(entry, job)
            if isinstance(gated, Passed):
                if gated.tokens:  # locks held: the outcome is fenced by them
                    ctx = dataclasses.replace(ctx, locks=gated.tokens)
                    job.context["task"]["locks"] = gated.tokens
                    record_of = functools.partial(
                        record_of, locks=len(gated.tokens),
                        lock_lost=lock_lost_transition(job, ctx, gated.tokens))
                outcome = await self._outcome(entry, job, ctx)
            else:
                outcome = gated
            record = record_of(outcome, finished=_now(), redactor=self.secrets.redactor)
        except asyncio.CancelledError:
            raise  # handed back by the shutdown path, which owns the entry now
        except Exception as exc:  # a bug must fail this task, not strand it or leak the slot
            log.exception("recording the outcome of %s failed", ref)
            outcome = Failed(f"internal error: {type(exc).__name__}: {exc}", retryable=False)
            record = record_of(outcome, finished=_now(), retries=False,
                               redactor=self.secrets.redactor)
        TASK_DURATION.labels(job.task.type).observe(time.perf_counter() - clock)
        TASK_ATTEMPTS.labels(job.task.type, outcome_label(outcome)).inc()
        self.inflight.finish(entry.delivery.message_id)
        self.committer.submit(Finished(self.pool, entry.delivery.message_id, record))

    async def _gate(self, entry: Running, job: Job) -> Any:
        """Take the task's locks and rate-limit token (:mod:`.gate`); tasks that declare
        none pass at once, without a store call."""
        if not job.task.gated or entry.stop is Stop.CANCELLED:
            return Passed({})
        return await self.gate.enter(job)

    async def _outcome(self, entry: Running, job: Job, ctx: TaskContext) -> Any:
        """Run the attempt (unless already cancelled); outputs made storable."""
        if entry.stop is Stop.CANCELLED:
            return Failed(entry.cancelled_message, retryable=False)
        try:
            outcome = await execute(job.task, job.context, ctx)
        except asyncio.CancelledError:
            if entry.stop is not Stop.CANCELLED:  # handed back, or the worker is closing
                raise
            return Failed(entry.cancelled_message, retryable=False)
        if isinstance(outcome, Succeeded):
            try:
                return Succeeded(storable(outcome.outputs))
            except UnstorableOutput as exc:
                return Failed(f"outputs cannot be stored: {exc}", retryable=False)
        return outcome

    def _acked(self, message_ids: list[str]) -> None:
        self.inflight.acked(message_ids)

    # -- leases ----------------------------------------------------------------------------------

    async def _renew_loop(self, store: str, renew: Callable[[], Awaitable[None]]) -> None:
        """Call ``renew`` every third of a lease, each call bounded by half a lease (a renewal
        slower than that cannot keep the lease anyway); after a failure retry within half a
        second. Outcomes are reported to :attr:`contact`, which lets takeovers wait until
        both stores have been reachable for a whole lease."""
        lease = min(self.settings.lease_seconds, self.settings.lock_lease_seconds)
        interval = lease / 3
        bound = lease / 2
        delay = interval
        while not self._closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), delay)
            if self._closing.is_set():
                return
            try:
                await asyncio.wait_for(renew(), bound)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.contact.failed(store):
                    log.warning("renewing leases in %s failed (%s: %s); retrying",
                                store, type(exc).__name__, exc)
                delay = min(interval, _RENEW_RETRY_SECONDS)
                continue
            if self.contact.ok(store):
                log.warning("renewing leases in %s works again", store)
            delay = interval

    async def _renew_stream(self) -> None:
        """Renew the stream lease of every unacknowledged entry (``PING`` when none, so an
        outage is seen either way)."""
        unacked = self.inflight.unacked()
        if unacked:
            await self.queue.renew(self.pool, self.consumer, unacked)
        else:
            await self.redis.ping()

    async def _renew_database(self) -> None:
        """Extend the PostgreSQL lease of every task this worker runs (always one statement,
        so an outage is seen even while nothing runs)."""
        await self.store.renew_leases(
            self.consumer, until=_now() + timedelta(seconds=self.settings.lease_seconds))
        await self.store.renew_lock_leases(
            self.consumer, until=_now() + timedelta(seconds=self.settings.lock_lease_seconds))

    # -- dependencies ---------------------------------------------------------------------------

    async def _probe_loop(self) -> None:
        """Probe Redis (``PING``) and PostgreSQL (``SELECT 1``) every
        ``dependency_check_seconds``, each bounded by its timeout, so an outage is seen
        (and its end) even while no work flows."""
        checks = {
            dependencies.REDIS: (self.redis.ping, self.settings.redis_timeout_seconds),
            dependencies.POSTGRES: (
                lambda: self.store.ping(self.settings.database_timeout_seconds),
                self.settings.database_timeout_seconds),
        }
        while not self._closing.is_set():
            for name, (call, timeout) in checks.items():
                try:
                    await asyncio.wait_for(call(), timeout)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    self.dependencies.record(name, ok=False,
                                             reason=f"{type(exc).__name__}: {exc}"[:200])
                else:
                    self.dependencies.record(name, ok=True)
            await asyncio.sleep(self.settings.dependency_check_seconds)

    # -- cancellation ---------------------------------------------------------------------------

    async def _control_loop(self) -> None:
        while not self._closing.is_set():
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.control())
                while not self._closing.is_set():
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._on_control(orjson.loads(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                dependencies.report(log, exc, "control channel failed; resubscribing")
                await asyncio.sleep(1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    def _on_control(self, message: dict) -> None:
        only = message.get("tasks")  # a deadline names the main tasks it cancelled
        for entry in self.inflight.of_execution(message.get("cancel")):
            if only is not None and entry.delivery.ref.task not in only:
                continue
            # Entries still loading their context have no task yet: the stop alone keeps
            # them from starting (see _outcome).
            entry.cancel(message.get("reason", "execution cancelled"))

    # -- shutdown ----------------------------------------------------------------------------------

    async def _finish_running(self) -> None:
        """Let running attempts finish within the grace period; hand back the rest."""
        tasks = [e.task for e in self.inflight.entries() if e.task is not None]
        if tasks:
            log.info("waiting up to %.0fs for %d running task(s)",
                     self.settings.shutdown_grace_seconds, len(tasks))
            await asyncio.wait(tasks, timeout=self.settings.shutdown_grace_seconds)
        leftovers = self.inflight.entries()
        if not leftovers:
            return
        for entry in leftovers:
            if entry.task is not None:
                entry.hand_back()
        await asyncio.gather(*(e.task for e in leftovers if e.task), return_exceptions=True)
        await self._hand_back([e.delivery for e in leftovers])

    async def _hand_back(self, deliveries: list[Delivery]) -> None:
        """Return claimed attempts to the queue now (``Ready`` again, a fresh entry).

        If that fails, the entries are abandoned instead and their leases lapse.
        """
        ids = [d.message_id for d in deliveries]
        try:
            refs = [d.ref for d in deliveries]
            handed = set(await self.store.hand_back(refs, worker=self.consumer, now=_now()))
            log.warning("handing back %d unfinished task(s) to the queue", len(handed))
            priority = {d.ref: d.priority for d in deliveries}
            async with self.redis.pipeline(transaction=False) as pipe:
                self.queue.add_dispatch(pipe, [ReadyTask(ref, self.pool, priority[ref])
                                               for ref in refs if ref in handed])
                self.queue.add_ack(pipe, self.pool, ids)
                await pipe.execute()
        except Exception as exc:
            dependencies.report(log, exc, "handing back failed; the leases will lapse instead")
        self.inflight.abandon(ids)


async def _cancel_all(tasks: list[asyncio.Task], timeout: float = 2.0,
                      graceful: bool = False) -> None:
    """Cancel ``tasks`` and wait for them, but never longer than ``timeout`` seconds:
    a library that swallows a cancellation must not keep the process from exiting.

    With ``graceful`` the tasks first get ``timeout`` seconds to end by themselves and
    only the ones still running are cancelled.
    """
    if graceful:
        _, still = await asyncio.wait(tasks, timeout=timeout)
        tasks = list(still)
        if not tasks:
            return
    for task in tasks:
        task.cancel()
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        log.warning("task %s did not stop within %.0fs", task.get_name(), timeout)


#: How soon a failed lease renewal is tried again, in seconds.
_RENEW_RETRY_SECONDS = 0.5


def _now() -> datetime:
    return datetime.now(UTC)

