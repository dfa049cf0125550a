"""The status of a WorkerPool (pure): its load, sizes, last scale and conditions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..pools.deployment import deployment_name
from ..pools.scaling import Decision, Load
from ..reasons import ConditionReason, ConditionType, PoolProblem
from .conditions import Condition, merge_conditions


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """What the scaler knows of a pool that its status shows.

    ``namespace`` is where its Deployment runs; ``replicas`` the Deployment's ``spec.replicas``
    and ``ready_replicas`` its ready pods; ``last_scale_time`` (RFC 3339) and
    ``last_scale_reason`` describe the last change of size, if any; ``problem`` is why the pool
    is not Ready, or None.
    """

    name: str
    namespace: str
    generation: int | None
    replicas: int
    ready_replicas: int = 0
    last_scale_time: str | None = None
    last_scale_reason: str | None = None
    problem: PoolProblem | None = None


def pool_conditions(facts: PoolFacts) -> list[Condition]:
    """``Ready=True, Active`` for a pool without a problem; else ``Ready=False`` with the
    problem's reason, and ``Stalled=True`` when the problem blocks work."""
    problem = facts.problem
    if problem is None:
        return [Condition(ConditionType.READY, True, ConditionReason.ACTIVE,
                          f"{facts.replicas} replica(s) of {deployment_name(facts.name)}")]
    conditions = [Condition(ConditionType.READY, False, problem.reason, problem.message)]
    if problem.blocks_work:
        conditions.append(Condition(ConditionType.STALLED, True, problem.reason,
                                    problem.message))
    return conditions


def pool_status(facts: PoolFacts, load: Load | None, decision: Decision | None, *,
                previous: dict[str, Any] | None, now: datetime) -> dict[str, Any]:
    """The WorkerPool status document: load, replicas, last scale, conditions.

    ``load`` and ``decision`` are None when the pool was not evaluated (a problem stopped
    it): then the last ``queued``/``inFlight``/``timersDue``/``desiredReplicas`` written stay
    as they are. ``previous`` is the status written before (for transition times).
    """
    previous = previous or {}
    status: dict[str, Any] = {
        "observedGeneration": facts.generation,
        "deployment": f"{facts.namespace}/{deployment_name(facts.name)}",
        "currentReplicas": facts.replicas,
        "readyReplicas": facts.ready_replicas,
        "lastScaleTime": facts.last_scale_time,
        "lastScaleReason": facts.last_scale_reason,
        "conditions": merge_conditions(previous.get("conditions"), pool_conditions(facts),
                                       generation=facts.generation, now=now),
    }
    if load is not None:
        status.update(queued=load.queued, inFlight=load.in_flight, timersDue=load.timers_due)
    if decision is not None:
        status["desiredReplicas"] = decision.replicas
    return status
