"""WorkerPool status (pure), as tables: conditions per problem, the Degraded condition from
the workers' readiness and the operator's view of Redis, load and decision, and every built
status fits both the CRD's schema and the status model."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor_operator.pools.scaling import Decision, Load
from conveyor_operator.reasons import ConditionReason, PoolProblem
from conveyor_operator.resources import ExecutionStatus, WorkerPoolStatus, WorkflowStatus
from conveyor_operator.status import (
    PodTrouble,
    PoolFacts,
    Waiting,
    degraded_condition,
    execution_status,
    pool_status,
    workflow_status,
)
from tests.support.factories import execution_state
from tests.support.manifests import schema_errors

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
BEFORE = "2026-03-01T11:00:00Z"


def facts(problem: PoolProblem | None = None, **changes: Any) -> PoolFacts:
    values: dict[str, Any] = {"name": "p", "namespace": "work", "generation": 4, "replicas": 2,
                              "ready_replicas": 2, **changes}
    return PoolFacts(problem=problem, **values)


def conditions(status: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(c["type"], c["status"], c["reason"]) for c in status["conditions"]]


WELL = ("Degraded", "False", "AllWorkersReady")
CRASHING = PodTrouble(ConditionReason.CRASH_LOOP_BACK_OFF,
                      "pod conveyor-worker-p-abc: exit code 2: cannot start")
NO_SECRET = PodTrouble(ConditionReason.CREATE_CONTAINER_CONFIG_ERROR,
                       'pod conveyor-worker-p-abc: secret "x" not found')


@pytest.mark.parametrize(("problem", "expected"), [
    pytest.param(None, [("Ready", "True", "Active"), WELL], id="healthy"),
    pytest.param(PoolProblem(ConditionReason.REDIS_UNAVAILABLE, "no answer"),
                 [("Ready", "False", "RedisUnavailable"),
                  ("Degraded", "True", "RedisUnavailable")], id="redis-down-is-not-stalled"),
    pytest.param(PoolProblem(ConditionReason.INVALID_SPEC, "spec.x: bad"),
                 [("Ready", "False", "InvalidSpec"), ("Stalled", "True", "InvalidSpec"), WELL],
                 id="invalid-spec"),
    pytest.param(PoolProblem(ConditionReason.REDIS_SECRET_MISSING, "no secret"),
                 [("Ready", "False", "RedisSecretMissing"),
                  ("Stalled", "True", "RedisSecretMissing"), WELL], id="secret-missing"),
    pytest.param(PoolProblem(ConditionReason.NAMESPACE_NOT_FOUND, "no ns"),
                 [("Ready", "False", "NamespaceNotFound"),
                  ("Stalled", "True", "NamespaceNotFound"), WELL], id="namespace-missing"),
    pytest.param(PoolProblem(ConditionReason.DEPLOYMENT_FAILED, "403"),
                 [("Ready", "False", "DeploymentFailed"),
                  ("Stalled", "True", "DeploymentFailed"), WELL], id="deployment-failed"),
])
def test_pool_conditions(problem: PoolProblem | None, expected: list[tuple[str, str, str]]
                         ) -> None:
    status = pool_status(facts(problem), None, None, previous=None, now=NOW)
    assert conditions(status) == expected
    ready = status["conditions"][0]
    assert ready["message"] == (problem.message if problem else "2 replica(s) of "
                                "conveyor-worker-p")
    assert ready["observedGeneration"] == 4
    assert ready["lastTransitionTime"] == "2026-03-01T12:00:00Z"


@pytest.mark.parametrize(("load", "decision", "expected"), [
    pytest.param(None, None, {}, id="not-evaluated"),
    pytest.param(Load(5, 3, 1), Decision(3, 3, "why", ()),
                 {"queued": 5, "inFlight": 3, "timersDue": 1, "desiredReplicas": 3},
                 id="evaluated"),
])
def test_pool_status_fields(load: Load | None, decision: Decision | None,
                            expected: dict[str, Any]) -> None:
    status = pool_status(facts(last_scale_time=BEFORE, last_scale_reason="grew"), load,
                         decision, previous=None, now=NOW)
    status.pop("conditions")
    assert status == {"observedGeneration": 4, "deployment": "work/conveyor-worker-p",
                      "currentReplicas": 2, "readyReplicas": 2, "lastScaleTime": BEFORE,
                      "lastScaleReason": "grew", **expected}


REDIS_DOWN = PoolProblem(ConditionReason.REDIS_UNAVAILABLE,
                         "cannot reach the pool's Redis (ConnectionError: refused); "
                         "keeping 2 replica(s)")
NOT_READY = ("worker(s) not ready for 30s or more: a worker's /readyz fails while Redis or "
             "PostgreSQL is unreachable from it (its log says which), or while it cannot start")


@pytest.mark.parametrize(("pool", "expected"), [
    pytest.param(facts(), (False, "AllWorkersReady", "all 2 worker(s) ready"),
                 id="all-ready"),
    pytest.param(facts(replicas=2, ready_replicas=3),
                 (False, "AllWorkersReady", "all 2 worker(s) ready"),
                 id="a-surge-pod-counts-as-none-missing"),
    pytest.param(facts(replicas=0, ready_replicas=0),
                 (False, "AllWorkersReady", "no workers to be ready (0 replicas)"),
                 id="scaled-to-zero"),
    pytest.param(facts(ready_replicas=1, unready_seconds=0.0),
                 (False, "WorkersNotReadyYet", "1 of 2 worker(s) not ready, for less than "
                  "30s so far (starting, or a store just became unreachable)"),
                 id="just-not-ready-is-not-degraded"),
    pytest.param(facts(ready_replicas=1, unready_seconds=29.9),
                 (False, "WorkersNotReadyYet", "1 of 2 worker(s) not ready, for less than "
                  "30s so far (starting, or a store just became unreachable)"),
                 id="still-within-the-delay"),
    pytest.param(facts(ready_replicas=1, unready_seconds=30.0),
                 (True, "WorkersNotReady", f"1 of 2 {NOT_READY}"), id="degraded-at-the-delay"),
    pytest.param(facts(ready_replicas=0, unready_seconds=300.0),
                 (True, "WorkersNotReady", f"2 of 2 {NOT_READY}"), id="none-ready"),
    pytest.param(facts(REDIS_DOWN),
                 (True, "RedisUnavailable", "the operator cannot reach the pool's Redis "
                  "(ConnectionError: refused); keeping 2 replica(s)"),
                 id="the-operator-cannot-reach-the-pools-redis"),
    pytest.param(facts(REDIS_DOWN, ready_replicas=1, unready_seconds=5.0),
                 (True, "RedisUnavailable", "the operator cannot reach the pool's Redis "
                  "(ConnectionError: refused); keeping 2 replica(s)"),
                 id="redis-down-and-workers-not-ready-yet"),
    pytest.param(facts(REDIS_DOWN, ready_replicas=1, unready_seconds=31.0),
                 (True, "WorkersNotReady", f"1 of 2 {NOT_READY}; the operator also cannot "
                  "reach the pool's Redis (ConnectionError: refused); keeping 2 replica(s)"),
                 id="workers-not-ready-and-redis-down"),
    pytest.param(facts(PoolProblem(ConditionReason.INVALID_SPEC, "spec.x: bad"),
                       ready_replicas=1, unready_seconds=60.0),
                 (True, "WorkersNotReady", f"1 of 2 {NOT_READY}"),
                 id="a-stalled-pool-still-reports-its-workers"),
    pytest.param(facts(ready_replicas=1, unready_seconds=0.0, trouble=CRASHING),
                 (True, "CrashLoopBackOff", CRASHING.message),
                 id="a-crash-loop-is-reported-at-once"),
    pytest.param(facts(ready_replicas=0, unready_seconds=300.0, trouble=NO_SECRET),
                 (True, "CreateContainerConfigError", NO_SECRET.message),
                 id="a-pods-cause-beats-the-count"),
    pytest.param(facts(REDIS_DOWN, ready_replicas=1, trouble=CRASHING),
                 (True, "CrashLoopBackOff", f"{CRASHING.message}; the operator also cannot "
                  "reach the pool's Redis (ConnectionError: refused); keeping 2 replica(s)"),
                 id="a-pods-cause-and-redis-down"),
    pytest.param(facts(replicas=0, ready_replicas=0, trouble=CRASHING),
                 (False, "AllWorkersReady", "no workers to be ready (0 replicas)"),
                 id="a-pod-left-from-scaling-to-zero-does-not-count"),
])
def test_degraded_condition(pool: PoolFacts, expected: tuple[bool, str, str]) -> None:
    condition = degraded_condition(pool)
    assert condition.type == "Degraded"
    assert (condition.status, condition.reason, condition.message) == expected


def test_the_degraded_delay_is_a_parameter() -> None:
    pool = facts(ready_replicas=1, unready_seconds=2.0)
    assert degraded_condition(pool, degraded_after=2).reason == "WorkersNotReady"
    assert "for 2s or more" in degraded_condition(pool, degraded_after=2).message
    assert degraded_condition(pool, degraded_after=2.5).reason == "WorkersNotReadyYet"
    status = pool_status(pool, None, None, previous=None, now=NOW, degraded_after=1)
    assert conditions(status)[-1] == ("Degraded", "True", "WorkersNotReady")


def test_degraded_keeps_its_transition_time_while_its_status_holds() -> None:
    """Only a change of status moves lastTransitionTime; a change of reason or counts
    (1 then 2 workers not ready) does not."""
    first = pool_status(facts(ready_replicas=1, unready_seconds=40.0), None, None,
                        previous=None, now=datetime(2026, 3, 1, 11, 0, tzinfo=UTC))
    worse = pool_status(facts(ready_replicas=0, unready_seconds=50.0), None, None,
                        previous=first, now=NOW)
    recovered = pool_status(facts(), None, None, previous=worse, now=NOW)
    assert conditions(worse)[-1] == ("Degraded", "True", "WorkersNotReady")
    assert worse["conditions"][-1]["lastTransitionTime"] == BEFORE
    assert recovered["conditions"][-1]["lastTransitionTime"] == "2026-03-01T12:00:00Z"


def test_pool_status_keeps_the_transition_time_while_ready_does_not_change() -> None:
    previous = {"conditions": [{"type": "Ready", "status": "True", "reason": "Active",
                                "message": "old", "lastTransitionTime": BEFORE}]}
    kept = pool_status(facts(), None, None, previous=previous, now=NOW)
    moved = pool_status(facts(PoolProblem(ConditionReason.INVALID_SPEC, "x")), None, None,
                        previous=previous, now=NOW)
    assert kept["conditions"][0]["lastTransitionTime"] == BEFORE
    assert moved["conditions"][0]["lastTransitionTime"] == "2026-03-01T12:00:00Z"


def _clean(status: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in status.items() if v is not None}


BUILT = [
    ("WorkerPool", WorkerPoolStatus,
     pool_status(facts(), Load(1, 2, 0), Decision(1, 1, "r", ()), previous=None, now=NOW)),
    ("WorkerPool", WorkerPoolStatus,
     pool_status(facts(PoolProblem(ConditionReason.INVALID_SPEC, "x")), None, None,
                 previous=None, now=NOW)),
    ("WorkerPool", WorkerPoolStatus,
     pool_status(facts(REDIS_DOWN, ready_replicas=0, unready_seconds=99.0), None, None,
                 previous=None, now=NOW)),
    ("Execution", ExecutionStatus,
     execution_status(generation=1, state=execution_state(60, "Failed"), previous=None,
                      now=NOW)),
    ("Execution", ExecutionStatus,
     execution_status(generation=1, state=None, previous=None, now=NOW,
                      waiting=Waiting(ConditionReason.POOL_NOT_READY, "pool p is not Ready"))),
    ("Workflow", WorkflowStatus,
     workflow_status(generation=1, workflow=None, problem="bad", previous=None, now=NOW)),
    # the task types a pool serves (issue 11 item 2)
    ("WorkerPool", WorkerPoolStatus,
     pool_status(facts(task_types=({"name": "set", "package": "conveyor", "version": "0.1"},
                                   {"name": "coded"}), task_type_names="coded,set"),
                 None, None, previous=None, now=NOW)),
    ("Workflow", WorkflowStatus,
     workflow_status(generation=1, workflow=None, problem=None, previous=None, now=NOW,
                     waiting="no running worker of pool 'p' has task type 'x' yet")),
]


def test_pool_status_shows_the_task_types_it_serves() -> None:
    served = ({"name": "set", "package": "conveyor", "version": "0.1"},)
    status = pool_status(facts(task_types=served, task_type_names="set"), None, None,
                         previous=None, now=NOW)
    assert (status["taskTypes"], status["taskTypeNames"]) == ([served[0]], "set")
    # not read yet: nothing written, so the last written stay
    assert "taskTypes" not in pool_status(facts(), None, None, previous=None, now=NOW)


def test_a_workflow_waiting_for_a_task_type_says_so_and_is_not_stalled() -> None:
    status = workflow_status(generation=2, workflow=None, problem=None, previous=None,
                             now=NOW, waiting="no running worker of pool 'p' has task type "
                                              "'x' yet (task 'c')")
    ready, second = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"]) == (
        "Ready", "False", "TaskTypeUnavailable")
    assert ready["message"] == "no running worker of pool 'p' has task type 'x' yet (task 'c')"
    assert (second["type"], second["status"]) == ("Reconciling", "True")
    assert status["contentHash"] is None


@pytest.mark.parametrize(("kind", "model", "status"), BUILT,
                         ids=[f"{kind}-{i}" for i, (kind, _, _) in enumerate(BUILT)])
def test_built_status_fits_the_crd_and_the_model(kind: str, model: type, status: dict) -> None:
    clean = _clean(status)
    assert schema_errors(kind, clean, part="status") == []
    assert model.model_validate(clean).model_dump(by_alias=True, exclude_none=True,
                                                  exclude_defaults=True) == {
        k: v for k, v in clean.items() if v != []}
