"""The sandbox's Deployment controller decisions (pure), as tables: template hashes, the
strategy's bounds, each step of a rollout and scale, and the Deployment's status."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_sandbox.rollout import (
    PodView,
    Step,
    Strategy,
    deployment_status,
    rollout_step,
    template_hash,
)

SURGE = Strategy(max_surge=1, max_unavailable=0)  # the operator's workers


def test_template_hash_is_stable_and_changes_with_the_template() -> None:
    one = {"metadata": {"labels": {"a": "1"}}, "spec": {"containers": [{"name": "w"}]}}
    same = {"spec": {"containers": [{"name": "w"}]}, "metadata": {"labels": {"a": "1"}}}
    other = {"metadata": {"labels": {"a": "1"}, "annotations": {
        "kubectl.kubernetes.io/restartedAt": "now"}}, "spec": {"containers": [{"name": "w"}]}}
    assert template_hash(one) == template_hash(same) != template_hash(other)
    assert len(template_hash(one)) == 10


@pytest.mark.parametrize(("spec", "expected"), [
    pytest.param({"replicas": 3, "strategy": {"type": "RollingUpdate", "rollingUpdate": {
        "maxSurge": 1, "maxUnavailable": 0}}}, SURGE, id="the-operators"),
    pytest.param({"replicas": 10}, Strategy(max_surge=3, max_unavailable=2),
                 id="defaults-25-percent-surge-up-unavailable-down"),
    pytest.param({"replicas": 1}, Strategy(max_surge=1, max_unavailable=0),
                 id="defaults-on-one-replica"),
    pytest.param({"replicas": 2, "strategy": {"rollingUpdate": {
        "maxSurge": 0, "maxUnavailable": 0}}}, Strategy(max_surge=0, max_unavailable=1),
        id="both-zero-means-one-unavailable"),
    pytest.param({"replicas": 2, "strategy": {"type": "Recreate"}}, Strategy(recreate=True),
                 id="recreate"),
])
def test_strategy(spec: dict[str, Any], expected: Strategy) -> None:
    assert Strategy.of(spec) == expected


def p(name: str, ready: bool = True, cost: int = 0, created: float = 0.0) -> PodView:
    return PodView(name, ready, cost, created)


@pytest.mark.parametrize(("replicas", "strategy", "new", "old", "expected"), [
    pytest.param(2, SURGE, [], [], Step(start=2), id="fresh"),
    pytest.param(2, SURGE, [p("n1"), p("n2")], [], Step(), id="steady"),
    pytest.param(2, SURGE, [p("n1")], [], Step(start=1), id="a-deleted-pod-is-replaced"),
    # A rollout of 2 with maxSurge 1, maxUnavailable 0, step by step:
    pytest.param(2, SURGE, [], [p("o1"), p("o2")], Step(start=1), id="roll-1-surge"),
    pytest.param(2, SURGE, [p("n1", False)], [p("o1"), p("o2")], Step(),
                 id="roll-2-wait-for-the-new-pod"),
    pytest.param(2, SURGE, [p("n1")], [p("o1"), p("o2", created=5.0)], Step(stop=("o2",)),
                 id="roll-3-new-ready-stop-the-youngest-old"),
    pytest.param(2, SURGE, [p("n1")], [p("o1")], Step(start=1), id="roll-4-surge-again"),
    pytest.param(2, SURGE, [p("n1"), p("n2", False)], [p("o1")], Step(), id="roll-5-wait"),
    pytest.param(2, SURGE, [p("n1"), p("n2")], [p("o1")], Step(stop=("o1",)),
                 id="roll-6-last-old-goes"),
    pytest.param(1, SURGE, [p("n1", False)], [p("o1", False)], Step(),
                 id="a-crash-looping-old-pod-stays-until-the-new-one-is-ready"),
    pytest.param(1, SURGE, [p("n1")], [p("o1", False)], Step(stop=("o1",)),
                 id="then-it-goes"),
    pytest.param(2, SURGE, [p("n1"), p("n2")], [p("o1"), p("o2", False)],
                 Step(stop=("o2", "o1")), id="not-ready-old-pods-go-first"),
    pytest.param(1, SURGE, [], [p("o1", False)], Step(start=1),
                 id="fixing-a-crash-loop-starts-a-new-pod"),
    pytest.param(2, SURGE, [p("n1", cost=3), p("n2", cost=0), p("n3", cost=1)], [],
                 Step(stop=("n2",)), id="scale-down-lowest-cost"),
    pytest.param(1, SURGE, [p("n1", created=1.0), p("n2", created=2.0)], [],
                 Step(stop=("n2",)), id="scale-down-youngest-among-equals"),
    pytest.param(1, SURGE, [p("n1"), p("n2", False)], [], Step(stop=("n2",)),
                 id="scale-down-not-ready-first"),
    pytest.param(0, SURGE, [], [p("o1"), p("o2")], Step(stop=("o1", "o2")),
                 id="scaled-to-zero-mid-rollout"),
    pytest.param(2, Strategy(recreate=True), [], [p("o1"), p("o2")], Step(stop=("o1", "o2")),
                 id="recreate-stops-old-first"),
    pytest.param(2, Strategy(max_surge=0, max_unavailable=1), [], [p("o1"), p("o2")],
                 Step(stop=("o1",)), id="no-surge-one-unavailable"),
])
def test_rollout_step(replicas: int, strategy: Strategy, new: list[PodView],
                      old: list[PodView], expected: Step) -> None:
    assert rollout_step(replicas, strategy, new, old) == expected


def test_recreate_waits_for_old_pods_to_terminate() -> None:
    recreate = Strategy(recreate=True)
    assert rollout_step(2, recreate, [], [], terminating_old=1) == Step()
    assert rollout_step(2, recreate, [], []) == Step(start=2)


@pytest.mark.parametrize(("replicas", "pods", "expected"), [
    pytest.param(2, [(False, True), (False, True), (True, False)],
                 {"replicas": 3, "updatedReplicas": 1, "readyReplicas": 2,
                  "availableReplicas": 2, "unavailableReplicas": 0}, id="mid-rollout"),
    pytest.param(2, [(True, True), (True, True)],
                 {"replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
                  "availableReplicas": 2, "unavailableReplicas": 0}, id="rolled-out"),
    pytest.param(1, [(True, False)],
                 {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 0,
                  "availableReplicas": 0, "unavailableReplicas": 1}, id="crash-looping"),
])
def test_deployment_status(replicas: int, pods: list[tuple[bool, bool]],
                           expected: dict[str, int]) -> None:
    assert deployment_status(replicas, 7, pods) == {**expected, "observedGeneration": 7}
