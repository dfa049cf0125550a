"""The scaler's view of a pool's workers, against fake workloads: since when fewer workers
than replicas have been ready (a timeline, as a table), what is kept when a pool is
registered again, and the Degraded condition written once, not on every look."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_operator.pools.scaler import PoolScaler, PoolState
from conveyor_operator.pools.workloads import Size
from conveyor_operator.reasons import ConditionReason, PoolProblem
from conveyor_operator.resources import WorkerPoolSpec


def state(replicas: int = 2, namespace: str = "work") -> PoolState:
    return PoolState("p", "uid-p", 1, WorkerPoolSpec(), namespace, replicas)


# Each step: (monotonic time, replicas the scaler set or None, ready read or None),
# then the unready seconds the status would show at that time.
@pytest.mark.parametrize(("steps", "expected"), [
    pytest.param([(0, None, 2), (10, None, 2)], [0, 0], id="all-ready"),
    pytest.param([(0, None, 1), (5, None, 1), (12, None, 0)], [0, 5, 12],
                 id="counts-from-the-first-look-without-a-break"),
    pytest.param([(0, None, 1), (5, None, 2), (6, None, 1)], [0, 0, 0],
                 id="a-moment-all-ready-starts-again"),
    pytest.param([(0, None, 2), (3, 4, None), (8, None, 2), (9, None, 4)], [0, 0, 5, 0],
                 id="a-scale-up-starts-the-clock-until-the-new-workers-are-ready"),
    pytest.param([(0, None, 1), (4, 1, None)], [0, 0], id="a-scale-down-can-end-it"),
    pytest.param([(0, 0, 0)], [0], id="zero-replicas"),
])
def test_unready_time_line(steps: list[tuple[float, int | None, int | None]],
                           expected: list[float]) -> None:
    pool = state()
    seen = []
    for now, replicas, ready in steps:
        if replicas is not None:
            pool.replicas = replicas
        pool.note_workers(now, ready)
        seen.append(pool.facts(now).unready_seconds)
    assert seen == expected


class FakeWorkloads:
    """A Deployment of a given size; counts the reads."""

    def __init__(self, size: Size | None, pods: list[dict[str, Any]] | None = None) -> None:
        self.size_now = size
        self.pods_now = pods or []
        self.reads = 0
        self.pod_reads = 0

    async def size(self, namespace: str, name: str) -> Size | None:
        self.reads += 1
        return self.size_now

    async def pods(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        self.pod_reads += 1
        return self.pods_now


class FakeKube:
    """Records status patches (always accepted)."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_status(self, ref: Any, patch: dict[str, Any], known: dict[str, Any]) -> bool:
        self.patches.append(patch)
        return True


class FakeQueues:
    async def close(self) -> None:
        return None


def degraded(status: dict[str, Any]) -> tuple[str, str]:
    found = {c["type"]: c for c in status["conditions"]}["Degraded"]
    return found["status"], found["reason"]


async def test_a_stalled_pool_still_reports_its_workers_and_writes_only_changes() -> None:
    workloads, kube = FakeWorkloads(Size(2, 1)), FakeKube()
    scaler = PoolScaler(None, kube, workloads, status_interval=0,  # type: ignore[arg-type]
                        degraded_after=0)
    pool = state()
    await scaler.report_problem(pool, ConditionReason.INVALID_SPEC, "spec.x: bad")
    first = len(kube.patches)

    await scaler.evaluate(pool)  # reads the Deployment: 1 of 2 ready
    assert workloads.reads == 1
    assert degraded(pool.status) == ("True", "WorkersNotReady")
    assert len(kube.patches) == first + 1
    await scaler.evaluate(pool)  # too soon to read again, nothing changed: no write
    await scaler.evaluate(pool)
    assert workloads.reads == 1 and len(kube.patches) == first + 1

    pool.last_workers = 0.0  # the next look reads again: all ready now
    workloads.size_now = Size(2, 2)
    await scaler.evaluate(pool)
    assert degraded(pool.status) == ("False", "AllWorkersReady")
    assert pool.status["readyReplicas"] == 2


CRASHING = {"name": "w-1", "deleting": False, "containers": [{
    "name": "worker", "image": "img", "waiting": {"reason": "CrashLoopBackOff",
                                                  "message": "back-off 10s"},
    "last_terminated": {"exitCode": 2, "reason": "Error", "message": "cannot start: x"}}]}


async def test_a_pods_definite_cause_is_named_at_once_and_written_once() -> None:
    workloads, kube = FakeWorkloads(Size(1, 0, current=1, updated=1), [CRASHING]), FakeKube()
    scaler = PoolScaler(None, kube, workloads, status_interval=0,  # type: ignore[arg-type]
                        degraded_after=3600)
    pool = state(replicas=1)
    await scaler.report_problem(pool, ConditionReason.INVALID_SPEC, "spec.x: bad")
    first = len(kube.patches)
    await scaler.evaluate(pool)
    found = {c["type"]: c for c in pool.status["conditions"]}["Degraded"]
    assert (found["status"], found["reason"], found["message"]) == (
        "True", "CrashLoopBackOff", "pod w-1: exit code 2: cannot start: x")
    assert len(kube.patches) == first + 1
    pool.last_workers = 0.0  # looked at again, the same cause: no write
    await scaler.evaluate(pool)
    assert workloads.pod_reads == 2 and len(kube.patches) == first + 1

    pool.last_workers = 0.0  # fixed: all ready, the pods are not listed any more
    workloads.size_now = Size(1, 1, current=1, updated=1)
    await scaler.evaluate(pool)
    assert degraded(pool.status) == ("False", "AllWorkersReady")
    assert workloads.pod_reads == 2


async def test_a_missing_deployment_has_no_ready_workers() -> None:
    scaler = PoolScaler(None, FakeKube(), FakeWorkloads(None),  # type: ignore[arg-type]
                        status_interval=0, degraded_after=0)
    pool = state(replicas=1)
    pool.problem = PoolProblem(ConditionReason.NAMESPACE_NOT_FOUND, "no ns")
    await scaler.evaluate(pool)
    assert pool.ready_replicas == 0
    assert degraded(pool.status) == ("True", "WorkersNotReady")


@pytest.mark.parametrize(("namespace", "kept"), [
    pytest.param("work", True, id="same-namespace-keeps-the-clock"),
    pytest.param("elsewhere", False, id="a-moved-pool-starts-afresh"),
])
async def test_registering_a_pool_again_keeps_its_workers_clock(namespace: str,
                                                                kept: bool) -> None:
    engine = type("E", (), {"pool_queues": lambda self, url=None: FakeQueues()})()
    scaler = PoolScaler(engine, FakeKube(), FakeWorkloads(Size(2, 1)))  # type: ignore[arg-type]
    old = state()
    await scaler.upsert(old, None)
    old.ready_replicas, old.unready_since = 1, 100.0  # as a look at the Deployment left it
    new = state(namespace=namespace)
    await scaler.upsert(new, None)  # a spec change
    assert (new.unready_since == 100.0) is kept
    assert new.ready_replicas == (1 if kept else 0)


# (replicas, ready, seconds since fewer were ready or None) -> without workers (delay 30 s)
@pytest.mark.parametrize(("replicas", "ready", "unready_for", "expected"), [
    pytest.param(1, 0, 45.0, True, id="none-ready-for-longer-than-the-delay"),
    pytest.param(1, 0, 5.0, False, id="scaling-up-from-zero-not-yet"),
    pytest.param(2, 1, 45.0, False, id="one-ready-serves-the-queue"),
    pytest.param(0, 0, None, False, id="scaled-to-zero-wants-none"),
    pytest.param(1, 0, None, False, id="never-seen-unready"),
])
def test_without_workers(replicas: int, ready: int, unready_for: float | None,
                         expected: bool) -> None:
    scaler = PoolScaler(None, FakeKube(), FakeWorkloads(None),  # type: ignore[arg-type]
                        degraded_after=30)
    pool = state(replicas=replicas)
    pool.ready_replicas = ready
    pool.unready_since = None if unready_for is None else 1000.0 - unready_for
    scaler.pools[pool.name] = pool
    assert scaler.without_workers("p", now=1000.0) is expected
    assert scaler.without_workers("unknown", now=1000.0) is False
