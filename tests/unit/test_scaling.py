"""Scaling decisions of worker pools, as tables (backlog, in flight, bounds, windows, time)."""

from __future__ import annotations

import pytest

from conveyor_operator.pools.scaling import Load, Policy, Recommendation, decide, recommend

POLICY = Policy(min_replicas=0, max_replicas=10, target_per_replica=50, concurrency=32,
                scale_up_window=0, scale_down_window=30)


@pytest.mark.parametrize(
    ("policy", "load", "replicas"),
    [
        (POLICY, Load(0, 0), 0),
        (POLICY, Load(1, 0), 1),
        (POLICY, Load(50, 0), 1),
        (POLICY, Load(51, 0), 2),
        (POLICY, Load(200, 0), 4),
        (POLICY, Load(150, 40, 10), 4),           # queued + in flight + timers due
        (POLICY, Load(10_000, 0), 10),            # clamped to maxReplicas
        (Policy(2, 10, 50, 32), Load(0, 0), 2),   # clamped to minReplicas
        (Policy(0, 10, 1000, 10), Load(0, 35), 4),  # never below what holds the in-flight work
        (Policy(0, 3, 1000, 10), Load(0, 35), 3),   # ...but never above maxReplicas
        (POLICY, Load(0, 0, 1), 1),               # a timer due soon needs a worker to fire it
        # a Workflow waits for the pool to advertise its task types: one worker to do it
        (POLICY, Load(0, 0, awaiting_catalogue=True), 1),
        (POLICY, Load(200, 0, awaiting_catalogue=True), 4),  # more work: more workers
        (Policy(0, 0 + 1, 50, 32), Load(0, 0, awaiting_catalogue=True), 1),
    ],
)
def test_recommend(policy: Policy, load: Load, replicas: int) -> None:
    assert recommend(policy, load) == replicas


def history(*pairs: tuple[float, int]) -> tuple[Recommendation, ...]:
    return tuple(Recommendation(at, n) for at, n in pairs)


@pytest.mark.parametrize(
    ("policy", "load", "current", "past", "now", "replicas"),
    [
        # burst: scale up at once (no scale-up window)
        (POLICY, Load(200, 0), 1, (), 100.0, 4),
        # activation from zero, even with a scale-up window
        (Policy(0, 10, 50, 32, scale_up_window=60), Load(5, 0), 0, ((90.0, 0),), 100.0, 1),
        # scale-up window: the lowest recommendation of the window wins
        (Policy(0, 10, 50, 32, scale_up_window=60), Load(200, 0), 1, ((90.0, 2),), 100.0, 2),
        # drained but within the scale-down window: hold
        (POLICY, Load(0, 0), 4, ((80.0, 4), (95.0, 0)), 100.0, 4),
        # drained past the window: down to the highest recent recommendation
        (POLICY, Load(0, 0), 4, ((60.0, 4), (75.0, 1)), 100.0, 1),
        # and to zero once every recommendation in the window is zero
        (POLICY, Load(0, 0), 4, ((60.0, 4), (75.0, 0)), 100.0, 0),
        # a long task keeps one worker even with the queue empty and minReplicas 0
        (POLICY, Load(0, 1), 1, ((60.0, 4),), 100.0, 1),
        (POLICY, Load(0, 1), 3, ((60.0, 4),), 100.0, 1),
        # minReplicas holds a floor through any window
        (Policy(2, 10, 50, 32, scale_down_window=0), Load(0, 0), 5, (), 100.0, 2),
        # no change: hold
        (POLICY, Load(100, 0), 2, (), 100.0, 2),
        # a pool at zero that a Workflow waits on to advertise wakes at once, window or not
        (Policy(0, 10, 50, 32, scale_up_window=60), Load(0, 0, awaiting_catalogue=True), 0,
         ((90.0, 0),), 100.0, 1),
        # ... and is not scaled down to zero while the Workflow waits
        (POLICY, Load(0, 0, awaiting_catalogue=True), 1, ((60.0, 0),), 100.0, 1),
    ],
)
def test_decide(policy, load, current, past, now, replicas) -> None:
    decision = decide(policy, load, current=current, history=history(*past), now=now)
    assert decision.replicas == replicas, decision.reason


def test_decision_remembers_recent_recommendations_only() -> None:
    decision = decide(POLICY, Load(0, 0), current=2,
                      history=history((10.0, 5), (80.0, 2)), now=100.0)
    assert [r.at for r in decision.history] == [80.0, 100.0]


def test_reason_explains_the_numbers() -> None:
    up = decide(POLICY, Load(120, 30, 0), current=1, history=(), now=0.0)
    assert up.reason == ("120 queued + 30 in flight + 0 timers due, target 50 per replica: "
                         "recommend 3, scale 1 -> 3")
    held = decide(POLICY, Load(0, 0), current=3, history=history((-5.0, 3)), now=0.0)
    assert held.reason.endswith("hold 3 (stabilization window 30s)")
