"""The pool scaler: observes each pool's load and sets its Deployment's replicas.

It wakes on every batch of engine events (Redis pub/sub: work was submitted, claimed or
finished), at most every ``min_interval`` seconds, and every ``fallback`` seconds anyway, so a
backlog is seen within a fraction of a second instead of on a 30 s poll. For each pool it
reads the backlog from Redis (stream length and pending entries), the timers due soon from
PostgreSQL, and decides with :func:`.scaling.decide`. It is the only writer of WorkerPool
status. When a pool's Redis cannot be reached it reports that and keeps the current size
(never scales to zero on missing data).

It also reads each pool's Deployment (at most every ``WORKERS_INTERVAL`` seconds, whatever
the pool's Redis or problems) for its ready workers: a worker's readiness probe fails while
Redis or PostgreSQL is unreachable from it, so ``status.readyReplicas`` below
``spec.replicas`` for ``degraded_after`` seconds makes the pool's ``Degraded`` condition
True (:func:`..status.workerpool.degraded_condition`). While some are not ready it also
lists the pool's pods for a definite cause (a crash loop, a missing Secret, an image that
cannot be pulled: :mod:`..status.pods`), which ``Degraded`` names at once. With the
Deployment it reads the pool's catalogue (the task types its workers advertise,
:meth:`Engine.pool_catalogues`): shown as ``status.taskTypes``, and a change of it (a
worker started or left, the pool became settled: :mod:`.catalogue`) is reported to
``on_catalogue`` so Workflows waiting for a type are compiled again. A pool a Workflow
waits on (``awaited``) keeps one worker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from conveyor_engine.api import Engine, PoolCatalogue, PoolQueues

from ..kube import Kube, ObjectRef
from ..reasons import ConditionReason, EventReason, EventType, PoolProblem
from ..resources import WORKERPOOLS, WorkerPoolSpec
from ..status import (
    DEGRADED_AFTER_SECONDS,
    PhaseEvent,
    PodTrouble,
    PoolFacts,
    pod_trouble,
    pool_status,
    rfc3339,
    status_patch,
)
from . import metrics
from .catalogue import Rollout, settled, status_task_types
from .deployment import consumer_pod, deployment_name, selector
from .scaling import Decision, Load, Policy, Recommendation, decide
from .workloads import Size, Workloads

log = logging.getLogger(__name__)
#: Least seconds between two reads of a pool's Deployment (its ready workers).
WORKERS_INTERVAL = 1.9


@dataclass(slots=True)
class PoolState:
    """What the scaler knows of one pool between evaluations."""

    name: str
    uid: str
    generation: int | None
    spec: WorkerPoolSpec
    namespace: str
    replicas: int
    status: dict[str, Any] = field(default_factory=dict)
    history: tuple[Recommendation, ...] = ()
    queues: PoolQueues | None = None
    problem: PoolProblem | None = None
    last_scale_time: str | None = None
    last_scale_reason: str | None = None
    last_status_write: float = 0.0
    last_costs: float = 0.0
    ready_replicas: int = 0
    #: Monotonic time since when fewer than ``replicas`` workers have been ready, or None.
    unready_since: float | None = None
    last_workers: float = 0.0
    holding: bool = False
    busy: bool = False
    costs_pending: bool = False
    #: The Deployment's rollout and the pool's catalogue, as last read (None: not yet).
    rollout: Rollout | None = None
    catalogue: PoolCatalogue | None = None
    #: A definite cause its pods show (a crash loop, a missing Secret...), as last read.
    trouble: PodTrouble | None = None

    @property
    def settled(self) -> bool:
        """Whether a type this pool does not advertise is really missing
        (:func:`.catalogue.settled`); never while a problem blocks its work."""
        if self.problem is not None and self.problem.blocks_work:
            return False
        return settled(self.rollout, self.catalogue.workers if self.catalogue else 0)

    @property
    def catalogue_key(self) -> tuple[Any, ...] | None:
        """What a change of makes waiting Workflows compile again (None: not read)."""
        if self.catalogue is None:
            return None
        return (self.catalogue.workers, tuple(t.name for t in self.catalogue.effective),
                self.catalogue.mounted, self.settled)

    @property
    def policy(self) -> Policy:
        """The pool's scaling policy."""
        return Policy(
            min_replicas=self.spec.min_replicas, max_replicas=self.spec.max_replicas,
            target_per_replica=self.spec.target, concurrency=self.spec.concurrency,
            scale_up_window=self.spec.scale_up_stabilization_seconds,
            scale_down_window=self.spec.scale_down_stabilization_seconds)

    @property
    def ref(self) -> ObjectRef:
        """The WorkerPool object (cluster-scoped)."""
        return ObjectRef("", self.name, self.uid, kind="WorkerPool", plural=WORKERPOOLS,
                         event_namespace=self.namespace)

    def note_workers(self, now: float, ready: int | None = None) -> None:
        """Take ``ready`` (the Deployment's ready replicas) when given, and track since when
        (``now``, monotonic seconds) fewer than ``replicas`` workers have been ready."""
        if ready is not None:
            self.ready_replicas = ready
        if self.ready_replicas < self.replicas:
            if self.unready_since is None:
                self.unready_since = now
        else:
            self.unready_since = None

    def facts(self, now: float) -> PoolFacts:
        """What the pool's status shows of this state at ``now`` (monotonic seconds)."""
        unready = 0.0 if self.unready_since is None else max(now - self.unready_since, 0.0)
        served, names = (status_task_types(self.catalogue.effective)
                         if self.catalogue is not None else (None, None))
        return PoolFacts(self.name, self.namespace, self.generation, self.replicas,
                         self.ready_replicas, self.last_scale_time, self.last_scale_reason,
                         self.problem, unready,
                         tuple(served) if served is not None else None, names,
                         self.trouble)


class PoolScaler:
    """Scales every registered pool; ``run()`` until cancelled."""

    def __init__(self, engine: Engine, kube: Kube, workloads: Workloads, *,
                 min_interval: float = 0.2, fallback: float = 5.0,
                 timer_horizon: float = 30.0, status_interval: float = 1.0,
                 degraded_after: float = DEGRADED_AFTER_SECONDS,
                 on_catalogue: Callable[[str], None] | None = None,
                 awaited: Callable[[str], bool] | None = None) -> None:
        """``min_interval``, ``fallback``, ``timer_horizon``, ``status_interval`` and
        ``degraded_after`` in seconds: the shortest pause between evaluations, the longest,
        how far ahead timers count as load, the least time between two status writes of a
        pool, and how long some workers must stay not ready before it is Degraded.
        ``on_catalogue(pool)`` is called when a pool's catalogue or settledness changes;
        ``awaited(pool)`` says whether a Workflow waits for the pool's task types."""
        self._on_catalogue = on_catalogue
        self._awaited = awaited or (lambda _: False)
        self._engine, self._kube, self._workloads = engine, kube, workloads
        self._degraded_after = degraded_after
        self._min_interval = min_interval
        self._fallback = fallback
        self._horizon = timedelta(seconds=timer_horizon)
        self._status_interval = status_interval
        self._pools: dict[str, PoolState] = {}
        self._wake = asyncio.Event()

    @property
    def pools(self) -> dict[str, PoolState]:
        """Registered pools by name."""
        return self._pools

    def without_workers(self, name: str, now: float | None = None) -> bool:
        """True when the pool ``name`` wants workers but none has been ready for the
        degraded delay (its ``Degraded`` condition's ``WorkersNotReady``): work queued on
        it waits for a worker. A pool still scaling up from zero is not (yet) without."""
        state = self._pools.get(name)
        if state is None or state.replicas <= 0 or state.ready_replicas > 0:
            return False
        if state.unready_since is None:
            return False
        now = time.monotonic() if now is None else now
        return now - state.unready_since >= self._degraded_after

    def wake(self) -> None:
        """Evaluate the pools soon (something that decides their size changed)."""
        self._wake.set()

    async def upsert(self, state: PoolState, redis_url: str | None) -> None:
        """Register or update a pool; ``redis_url`` None means the operator's own Redis."""
        old = self._pools.get(state.name)
        if old is not None:
            state.history, state.status = old.history, old.status
            state.last_scale_time, state.last_scale_reason = (
                old.last_scale_time, old.last_scale_reason)
            _keep_workers(state, old)
            if old.queues is not None:
                await old.queues.close()
        state.note_workers(time.monotonic())
        state.queues = self._engine.pool_queues(redis_url)
        self._pools[state.name] = state
        self._wake.set()

    async def report_problem(self, state: PoolState, reason: ConditionReason,
                             message: str) -> None:
        """Register a pool that cannot be scaled (bad spec, missing Secret) and say why."""
        old = self._pools.get(state.name)
        if old is not None:
            state.status = old.status
            _keep_workers(state, old, read=True)
            if old.queues is not None:  # a blocked pool is not looked at: let its Redis go
                await old.queues.close()
        state.note_workers(time.monotonic())
        state.problem = PoolProblem(reason, message)
        self._pools[state.name] = state
        await self._write_status(state, force=True)

    async def remove(self, name: str, uid: str | None = None) -> None:
        """Forget a deleted pool; with ``uid``, only if the known pool is that object (a
        pool re-created under the same name may already have replaced it)."""
        known = self._pools.get(name)
        if known is None or (uid is not None and known.uid != uid):
            return
        state = self._pools.pop(name, None)
        if state and state.queues is not None:
            await state.queues.close()

    async def run(self) -> None:
        """Listen to engine events and evaluate pools until cancelled."""
        await asyncio.gather(self._listen(), self._loop())

    async def _listen(self) -> None:
        while True:
            try:
                async for _ in self._engine.events():
                    self._wake.set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("engine change stream failed; the periodic check continues")
                await asyncio.sleep(1.0)

    async def _loop(self) -> None:
        while True:
            # A pool held by a stabilization window must be looked at again when the window
            # has passed, even if no event arrives meanwhile (the queue went quiet).
            # A busy pool is looked at every 2 s so its pods' deletion costs follow the
            # tasks they run, which publish nothing while they run.
            timeout = self._fallback
            # A pool with workers not ready is looked at every 2 s too: a pod of it may
            # show why (a crash loop, a missing Secret), which Degraded names at once.
            if any(p.busy or p.costs_pending or p.unready_since is not None
                   for p in self._pools.values()):
                timeout = min(timeout, 2.0)
            if any(p.holding for p in self._pools.values()):
                timeout = min(timeout, 0.5)
            # A pool a Workflow waits on is looked at every second: its workers advertise
            # in Redis without an engine event, and the Workflow waits for that news.
            if any(self._awaited(name) for name in self._pools):
                timeout = min(timeout, 1.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()
            for state in list(self._pools.values()):
                try:
                    await self.evaluate(state)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("scaling pool %s failed", state.name)
            await asyncio.sleep(self._min_interval)

    async def evaluate(self, state: PoolState) -> Decision | None:
        """Observe one pool, scale it if needed, protect busy pods, write status.

        A pool with a problem that blocks work is not scaled, but its workers' readiness is
        still read and its status written when that changes it (``Degraded``)."""
        await self._observe_workers(state)
        if state.problem is not None and state.problem.blocks_work:
            await self._write_status(state, force=False)
            return None
        assert state.queues is not None
        try:
            backlog = await state.queues.backlog(state.name)
            by_consumer = await state.queues.in_flight_by_consumer(state.name)
        except (OSError, ConnectionError, TimeoutError) as exc:
            await self._redis_down(state, exc)
            return None
        except Exception as exc:  # redis-py raises its own ConnectionError/TimeoutError types
            if type(exc).__module__.startswith("redis"):
                await self._redis_down(state, exc)
                return None
            raise
        if state.problem is not None:
            state.problem = None
        timers = await self._engine.timers_due_before(
            state.name, datetime.now(UTC) + self._horizon)
        load = Load(backlog.queued, backlog.in_flight, timers,
                    awaiting_catalogue=self._awaited(state.name))
        decision = decide(state.policy, load, current=state.replicas, history=state.history,
                          now=time.monotonic())
        state.history = decision.history
        state.holding = decision.recommended != decision.replicas
        state.busy = load.in_flight > 0
        before = state.replicas
        if decision.replicas != before:
            await self._workloads.scale(state.namespace, deployment_name(state.name),
                                        decision.replicas)
            state.replicas = decision.replicas
            state.note_workers(time.monotonic())
            state.last_scale_time = rfc3339(datetime.now(UTC))
            state.last_scale_reason = decision.reason
            direction = "up" if decision.replicas > before else "down"
            metrics.SCALE_EVENTS.labels(state.name, direction).inc()
            log.info("pool %s: %s", state.name, decision.reason)
            reason = EventReason.SCALED_UP if direction == "up" else EventReason.SCALED_DOWN
            await self._kube.post_event(state.ref, PhaseEvent(
                str(EventType.NORMAL), str(reason), decision.reason))
        metrics.QUEUED.labels(state.name).set(load.queued)
        metrics.IN_FLIGHT.labels(state.name).set(load.in_flight)
        metrics.TIMERS_DUE.labels(state.name).set(load.timers_due)
        metrics.DESIRED.labels(state.name).set(decision.replicas)
        metrics.CURRENT.labels(state.name).set(state.replicas)
        await self._protect_busy_pods(state, by_consumer)
        await self._write_status(state, load=load, decision=decision,
                                 force=decision.replicas != before)
        return decision

    async def _redis_down(self, state: PoolState, exc: Exception) -> None:
        state.problem = PoolProblem(
            ConditionReason.REDIS_UNAVAILABLE,
            f"cannot reach the pool's Redis ({type(exc).__name__}: {exc}); "
            f"keeping {state.replicas} replica(s)")
        await self._write_status(state, force=False)

    async def _protect_busy_pods(self, state: PoolState, by_consumer: dict[str, int]) -> None:
        """Set each pod's deletion cost to the tasks it runs (at most every 2 s)."""
        now = time.monotonic()
        if now - state.last_costs < 1.9:
            state.costs_pending = True  # look again soon: the costs may be stale now
            return
        state.last_costs = now
        state.costs_pending = False
        running: dict[str, int] = {}
        for consumer, count in by_consumer.items():
            pod = consumer_pod(consumer)
            running[pod] = running.get(pod, 0) + count
        pods = await self._workloads.pods(state.namespace, selector(state.name))
        for pod in pods:
            cost = running.get(pod["name"], 0)
            if pod["cost"] != str(cost) and not pod["deleting"]:
                await self._workloads.set_deletion_cost(state.namespace, pod["name"], cost)

    async def _observe_workers(self, state: PoolState) -> None:
        """Read the pool's Deployment for its ready workers, at most every
        ``WORKERS_INTERVAL`` seconds; a Deployment that is missing has none ready. A failed
        read keeps what was known (the next look tries again)."""
        now = time.monotonic()
        if now - state.last_workers < WORKERS_INTERVAL:
            return
        state.last_workers = now
        try:
            size = await self._workloads.size(state.namespace, deployment_name(state.name))
        except (ApiException, OSError, TimeoutError) as exc:
            log.warning("pool %s: cannot read its Deployment (%s: %s); its readiness is "
                        "looked at again soon", state.name, type(exc).__name__, exc)
            return
        state.note_workers(now, 0 if size is None else size.ready)
        state.rollout = None if size is None else Rollout(
            size.replicas, size.current, size.updated, size.ready, size.generation,
            size.observed_generation)
        await self._read_trouble(state, size)
        await self._read_catalogue(state)

    async def _read_trouble(self, state: PoolState, size: Size | None) -> None:
        """Read the pool's pods for a definite cause (:func:`..status.pods.pod_trouble`)
        while some of its pods are not ready (a healthy pool costs no pod listing). A
        failed read keeps what was known."""
        if size is None or (size.ready >= size.replicas and size.current <= size.ready):
            state.trouble = None
            return
        try:
            pods = await self._workloads.pods(state.namespace, selector(state.name))
        except (ApiException, OSError, TimeoutError) as exc:
            log.warning("pool %s: cannot list its pods (%s: %s)", state.name,
                        type(exc).__name__, exc)
            return
        state.trouble = pod_trouble([p for p in pods if not p["deleting"]])

    async def _read_catalogue(self, state: PoolState) -> None:
        """Read the pool's catalogue (from the operator's Redis, where workers advertise);
        tell ``on_catalogue`` when what it means changed. A failed read keeps the last."""
        before = state.catalogue_key
        try:
            state.catalogue = (await self._engine.pool_catalogues([state.name]))[state.name]
        except Exception as exc:  # Redis down: the pool's status says so elsewhere
            log.warning("pool %s: cannot read its task types (%s: %s)", state.name,
                        type(exc).__name__, exc)
            return
        if state.catalogue_key != before and self._on_catalogue is not None:
            self._on_catalogue(state.name)

    def catalogue_of(self, name: str) -> tuple[PoolState | None, PoolCatalogue | None]:
        """The known pool ``name`` and its last read catalogue (None, None: unknown)."""
        state = self._pools.get(name)
        return state, state.catalogue if state is not None else None

    async def _write_status(self, state: PoolState, *, load: Load | None = None,
                            decision: Decision | None = None, force: bool) -> None:
        now = time.monotonic()
        if not force and now - state.last_status_write < self._status_interval:
            return
        desired = pool_status(state.facts(now), load, decision, previous=state.status,
                              now=datetime.now(UTC), degraded_after=self._degraded_after)
        patch = status_patch(state.status, desired)
        if not patch:
            return
        if await self._kube.patch_status(state.ref, patch, known=state.status):
            state.last_status_write = now
            state.status = {k: v for k, v in {**state.status, **patch}.items() if v is not None}


def _keep_workers(state: PoolState, old: PoolState, *, read: bool = False) -> None:
    """Carry what ``old`` knew of the workers' readiness over to ``state`` (the same pool
    registered again: a spec change, a problem), when both run in the same namespace; with
    ``read``, ``state`` already holds a fresh ready count (from the Deployment) to keep."""
    if old.namespace != state.namespace:
        return
    state.unready_since, state.last_workers = old.unready_since, old.last_workers
    state.rollout, state.catalogue = old.rollout, old.catalogue
    state.trouble = old.trouble
    if not read:
        state.ready_replicas = old.ready_replicas
