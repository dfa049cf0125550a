"""CrdWatch: reports a CRD that stops matching once, and repairs once it matches again."""

from __future__ import annotations

import copy

from conveyor_operator.crdcheck import expected_crds
from conveyor_operator.crdwatch import CrdWatch, problem_key
from conveyor_operator.pools import metrics
from conveyor_operator.probes import OperatorState, Role, readiness


class FakeKube:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    async def post_event(self, ref, event) -> bool:
        self.events.append((ref.name, event.reason))
        return True


async def test_mismatch_is_reported_once_and_a_match_repairs() -> None:
    expected = expected_crds()
    crd = next(c for c in expected if c["metadata"]["name"] == "executions.conveyor.dev")
    older = copy.deepcopy(crd)
    older["metadata"]["labels"]["conveyor.dev/crd-version"] = "0"
    kube, state, repairs = FakeKube(), OperatorState(Role.LEADING, True), []

    async def repair() -> None:
        repairs.append(1)

    watch = CrdWatch(kube, state, expected, repair, event_namespace="default")  # type: ignore[arg-type]
    await watch.seen(crd)
    await watch.seen({"metadata": {"name": "other.example.com"}})
    assert kube.events == [] and not state.problems
    await watch.seen(older)
    await watch.seen(older)  # reported once
    assert kube.events == [("executions.conveyor.dev", "CrdMismatch")]
    assert "version 0" in state.problems[problem_key("executions.conveyor.dev")]
    assert not readiness(state, 0, 0).ok
    gauge = metrics.CRD_MISMATCH.labels("executions.conveyor.dev")._value.get()
    assert gauge == 1
    await watch.seen(crd)
    assert kube.events[-1] == ("executions.conveyor.dev", "CrdMatches")
    assert repairs == [1] and not state.problems and readiness(state, 0, 0).ok
    await watch.seen(crd, deleted=True)
    assert kube.events[-1] == ("executions.conveyor.dev", "CrdMismatch")
