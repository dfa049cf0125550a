"""The status of a WorkerPool (pure): its load, sizes, last scale and conditions.

Two conditions say two things. ``Ready`` says whether the operator can run the pool as its
spec says (``False`` with the problem's reason when it cannot; ``Stalled`` too when waiting
will not fix it). ``Degraded`` says whether the pool runs below what it should: ``True``
when some of the workers its Deployment runs have not been ready for
``degraded_after`` seconds (a worker's ``/readyz`` fails while Redis or PostgreSQL is
unreachable from it), at once when one of its pods shows a definite cause (a container in
``CrashLoopBackOff``, ``CreateContainerConfigError``, ``ImagePullBackOff``...: :mod:`.pods`,
named as the reason), or when the operator cannot reach the pool's Redis. A pool whose
workers are not ready stays ``Ready``: it exists, keeps its size and resumes by itself
when its stores answer again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..pools.deployment import deployment_name
from ..pools.scaling import Decision, Load
from ..reasons import ConditionReason, ConditionType, PoolProblem
from .conditions import Condition, merge_conditions
from .pods import PodTrouble


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """What the scaler knows of a pool that its status shows.

    ``namespace`` is where its Deployment runs; ``replicas`` the Deployment's ``spec.replicas``
    and ``ready_replicas`` its ready pods (its ``status.readyReplicas``); ``unready_seconds``
    how long fewer than ``replicas`` have been ready without a break (0 while all are);
    ``last_scale_time`` (RFC 3339) and ``last_scale_reason`` describe the last change of size,
    if any; ``problem`` is why the pool is not Ready, or None; ``task_types`` and
    ``task_type_names`` are ``status.taskTypes`` and ``status.taskTypeNames`` (None: the
    pool's catalogue was not read yet, so the last written stay); ``trouble`` the definite
    cause its pods show (:func:`.pods.pod_trouble`), or None.
    """

    name: str
    namespace: str
    generation: int | None
    replicas: int
    ready_replicas: int = 0
    last_scale_time: str | None = None
    last_scale_reason: str | None = None
    problem: PoolProblem | None = None
    unready_seconds: float = 0.0
    task_types: tuple[dict[str, str], ...] | None = None
    task_type_names: str | None = None
    trouble: PodTrouble | None = None


#: Seconds that some of a pool's workers must stay not ready before the pool counts as
#: degraded (the operator's ``CONVEYOR_POOL_DEGRADED_AFTER_SECONDS``). Workers that are
#: starting are not ready for a few seconds on every scale-up; this keeps them from
#: flipping the condition (and alerts on it) each time. A worker that loses a store is
#: already not ready only after its probe failed ``failureThreshold`` times (15 s).
DEGRADED_AFTER_SECONDS = 30.0


def degraded_condition(facts: PoolFacts, *,
                       degraded_after: float = DEGRADED_AFTER_SECONDS) -> Condition:
    """The ``Degraded`` condition of a pool, from its workers' readiness and the operator's
    own view of the pool's Redis (``degraded_after`` in seconds).

    ``True`` with the pods' definite cause (``facts.trouble``: ``CrashLoopBackOff``,
    ``CreateContainerConfigError``, ...) as soon as a pod shows one; else ``True,
    WorkersNotReady`` when fewer than ``replicas`` workers have been ready for at
    least ``degraded_after`` seconds; else ``True, RedisUnavailable`` while the operator
    cannot reach the pool's Redis (its problem); else ``False`` with ``WorkersNotReadyYet``
    (some not ready, not for that long) or ``AllWorkersReady``. Messages name counts only,
    never times, so an unchanged pool gives an unchanged condition (no status write).
    """
    unready = max(facts.replicas - facts.ready_replicas, 0)
    after = f"{degraded_after:g}s"
    problem = facts.problem
    redis_down = problem if (problem is not None and
                             problem.reason == ConditionReason.REDIS_UNAVAILABLE) else None
    also = f"; the operator also {redis_down.message}" if redis_down is not None else ""
    if facts.trouble is not None and facts.replicas > 0:
        return Condition(ConditionType.DEGRADED, True, facts.trouble.reason,
                         facts.trouble.message + also)
    if unready and facts.unready_seconds >= degraded_after:
        message = (f"{unready} of {facts.replicas} worker(s) not ready for {after} or more: "
                   f"a worker's /readyz fails while Redis or PostgreSQL is unreachable from "
                   f"it (its log says which), or while it cannot start") + also
        return Condition(ConditionType.DEGRADED, True, ConditionReason.WORKERS_NOT_READY,
                         message)
    if redis_down is not None:
        return Condition(ConditionType.DEGRADED, True, ConditionReason.REDIS_UNAVAILABLE,
                         f"the operator {redis_down.message}")
    if unready:
        return Condition(ConditionType.DEGRADED, False,
                         ConditionReason.WORKERS_NOT_READY_YET,
                         f"{unready} of {facts.replicas} worker(s) not ready, for less than "
                         f"{after} so far (starting, or a store just became unreachable)")
    if facts.replicas == 0:
        return Condition(ConditionType.DEGRADED, False, ConditionReason.ALL_WORKERS_READY,
                         "no workers to be ready (0 replicas)")
    return Condition(ConditionType.DEGRADED, False, ConditionReason.ALL_WORKERS_READY,
                     f"all {facts.replicas} worker(s) ready")


def pool_conditions(facts: PoolFacts, *,
                    degraded_after: float = DEGRADED_AFTER_SECONDS) -> list[Condition]:
    """``Ready=True, Active`` for a pool without a problem; else ``Ready=False`` with the
    problem's reason, and ``Stalled=True`` when the problem blocks work; then ``Degraded``
    (:func:`degraded_condition`, ``degraded_after`` in seconds) in every case."""
    problem = facts.problem
    if problem is None:
        conditions = [Condition(ConditionType.READY, True, ConditionReason.ACTIVE,
                                f"{facts.replicas} replica(s) of {deployment_name(facts.name)}")]
    else:
        conditions = [Condition(ConditionType.READY, False, problem.reason, problem.message)]
        if problem.blocks_work:
            conditions.append(Condition(ConditionType.STALLED, True, problem.reason,
                                        problem.message))
    conditions.append(degraded_condition(facts, degraded_after=degraded_after))
    return conditions


def pool_status(facts: PoolFacts, load: Load | None, decision: Decision | None, *,
                previous: dict[str, Any] | None, now: datetime,
                degraded_after: float = DEGRADED_AFTER_SECONDS) -> dict[str, Any]:
    """The WorkerPool status document: load, replicas, last scale, conditions.

    ``load`` and ``decision`` are None when the pool was not evaluated (a problem stopped
    it): then the last ``queued``/``inFlight``/``timersDue``/``desiredReplicas`` written stay
    as they are. ``previous`` is the status written before (for transition times);
    ``degraded_after`` (seconds) goes to :func:`degraded_condition`.
    """
    previous = previous or {}
    status: dict[str, Any] = {
        "observedGeneration": facts.generation,
        "deployment": f"{facts.namespace}/{deployment_name(facts.name)}",
        "currentReplicas": facts.replicas,
        "readyReplicas": facts.ready_replicas,
        "lastScaleTime": facts.last_scale_time,
        "lastScaleReason": facts.last_scale_reason,
        "conditions": merge_conditions(
            previous.get("conditions"), pool_conditions(facts, degraded_after=degraded_after),
            generation=facts.generation, now=now),
    }
    if facts.task_types is not None:
        status.update(taskTypes=list(facts.task_types), taskTypeNames=facts.task_type_names)
    if load is not None:
        status.update(queued=load.queued, inFlight=load.in_flight, timersDue=load.timers_due)
    if decision is not None:
        status["desiredReplicas"] = decision.replicas
    return status
