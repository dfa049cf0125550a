"""Leader election's decision (who holds the Lease) and the probes' verdicts, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_operator.leader.decision import (
    LeaseAction,
    LeaseRecord,
    decide,
    must_stop,
    released,
)
from conveyor_operator.probes import OperatorState, Role, liveness, readiness

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


HELD_BY_A = LeaseRecord("a", 15, at(0), at(10), 3)
RELEASED = released(HELD_BY_A, at(12))

# (lease, identity, now) -> (action, holder after, acquireTime, renewTime, transitions)
TABLE = [
    (None, "a", at(0), LeaseAction.CREATE, "a", at(0), at(0), 0),
    (HELD_BY_A, "a", at(20), LeaseAction.RENEW, "a", at(0), at(20), 3),  # ours, even late
    (HELD_BY_A, "b", at(24.9), LeaseAction.WAIT, "a", None, None, None),  # valid
    (HELD_BY_A, "b", at(25), LeaseAction.ACQUIRE, "b", at(25), at(25), 4),  # just expired
    (HELD_BY_A, "b", at(100), LeaseAction.ACQUIRE, "b", at(100), at(100), 4),
    (RELEASED, "b", at(12.5), LeaseAction.ACQUIRE, "b", at(12.5), at(12.5), 4),  # released
    (LeaseRecord(None, 15), "b", at(1), LeaseAction.ACQUIRE, "b", at(1), at(1), 1),
    (LeaseRecord("a", 15, None, None, 0), "b", at(1), LeaseAction.ACQUIRE, "b", at(1), at(1), 1),
    # Expiry uses the holder's duration (60), not the candidate's (15).
    (LeaseRecord("a", 60, at(0), at(0), 0), "b", at(30), LeaseAction.WAIT, "a", None, None,
     None),
]


@pytest.mark.parametrize(("lease", "me", "now", "action", "holder", "acquired", "renewed",
                          "transitions"), TABLE)
def test_who_holds_the_lease(lease, me, now, action, holder, acquired, renewed,
                             transitions) -> None:
    decision = decide(lease, me, now, 15)
    assert (decision.action, decision.holder) == (action, holder)
    if action is LeaseAction.WAIT:
        assert decision.record is None
        return
    record = decision.record
    assert (record.holder, record.acquire_time, record.renew_time, record.transitions,
            record.duration_seconds) == (me, acquired, renewed, transitions, 15)


def test_an_empty_identity_is_refused() -> None:
    with pytest.raises(ValueError, match="identity"):
        decide(None, "", T0, 15)


def test_a_released_lease_has_no_holder_and_round_trips_through_the_spec() -> None:
    assert RELEASED.holder is None and RELEASED.duration_seconds == 1
    spec = HELD_BY_A.to_spec()
    assert spec == {"holderIdentity": "a", "leaseDurationSeconds": 15,
                    "acquireTime": "2026-01-01T12:00:00.000000Z",
                    "renewTime": "2026-01-01T12:00:10.000000Z", "leaseTransitions": 3}
    assert LeaseRecord.from_spec(spec) == HELD_BY_A


@pytest.mark.parametrize(("last", "now", "stop"), [(0, 9.9, False), (0, 10, False),
                                                   (0, 10.1, True)])
def test_a_leader_stops_after_its_renew_deadline(last, now, stop) -> None:
    assert must_stop(last, now, 10) is stop


def state(role=Role.LEADING, started=True, watches=None, problems=None) -> OperatorState:
    return OperatorState(role, started, watches or {}, problems or {})


PROBES = [
    # state, now, stall_after -> (alive, ready)
    (state(Role.STARTING, False), 0, 60, True, False),
    (state(Role.STANDBY, False), 0, 60, True, True),
    (state(started=False), 0, 60, True, False),
    (state(watches={"executions": 0, "workflows": 50}), 60, 60, True, True),
    (state(watches={"executions": 0, "workflows": 50}), 61, 60, False, False),  # stalled
    (state(watches={"executions": 0}), 1000, 0, True, True),  # 0: never checked
    (state(Role.STANDBY, watches={"executions": 0}), 1000, 60, True, True),
    (state(problems={"crds": "executions.conveyor.dev does not match"}), 0, 60, True, False),
]


@pytest.mark.parametrize(("st", "now", "stall", "alive", "ready"), PROBES)
def test_probes(st, now, stall, alive, ready) -> None:
    assert liveness(st, now, stall).ok is alive
    assert readiness(st, now, stall).ok is ready


@pytest.mark.parametrize(("path", "resource"), [
    ("/api/v1/pods", "pods"),
    ("/api/v1/namespaces", "namespaces"),
    ("/api/v1/namespaces/ns/pods", "pods"),
    ("/apis/conveyor.dev/v1alpha1/executions", "executions"),
    ("/apis/conveyor.dev/v1alpha1/namespaces/ns/executions", "executions"),
    ("/apis/conveyor.dev/v1alpha1/namespaces/ns/executions/x", None),
    ("/apis/conveyor.dev/v1alpha1/namespaces/ns/executions/x/status", None),
    ("/api/v1/namespaces/ns", None),
    ("/apis/conveyor.dev/v1alpha1/workerpools/p", None),
    ("/healthz", None),
    ("/apis", None),
])
def test_which_requests_are_lists_or_watches_of_a_resource(path, resource) -> None:
    from conveyor_operator.watchclock import collection_resource

    assert collection_resource(path) == resource
