"""The sandbox kubelet's restarts and container status (pure), as tables: the crash-loop
back-off schedule (Kubernetes' 10 s doubling to 300 s, reset after 10 minutes of running),
the termination message taken from the output, and the pod status it writes."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_sandbox.restarts import (
    ContainerView,
    CrashLoopBackOff,
    back_off_message,
    pod_status,
    terminated,
    termination_message,
)

KUBERNETES = CrashLoopBackOff()


@pytest.mark.parametrize(("crashes", "delay"), [
    (1, 10.0), (2, 20.0), (3, 40.0), (4, 80.0), (5, 160.0), (6, 300.0), (7, 300.0),
    (1000, 300.0),
])
def test_kubernetes_back_off(crashes: int, delay: float) -> None:
    assert KUBERNETES.delay(crashes) == delay


@pytest.mark.parametrize(("before", "ran_for", "after"), [
    pytest.param(0, 0.5, 1, id="first-crash"),
    pytest.param(3, 5.0, 4, id="crash-in-a-row"),
    pytest.param(6, 599.9, 7, id="just-under-ten-minutes"),
    pytest.param(6, 600.0, 1, id="ten-minutes-of-running-resets"),
])
def test_crashes_in_a_row(before: int, ran_for: float, after: int) -> None:
    assert KUBERNETES.crashes_in_a_row(before, ran_for) == after


def test_a_short_back_off_is_a_setting() -> None:
    quick = CrashLoopBackOff(initial=0.5, cap=2.0, reset_after=30.0)
    assert [quick.delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert quick.crashes_in_a_row(4, 30.0) == 1


@pytest.mark.parametrize("bad", [
    {"initial": 0}, {"initial": 10, "cap": 5}, {"reset_after": 0}])
def test_an_invalid_back_off_is_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="invalid back-off"):
        CrashLoopBackOff(**bad)
    with pytest.raises(ValueError, match="at least 1"):
        KUBERNETES.delay(0)


@pytest.mark.parametrize(("output", "expected"), [
    pytest.param(b"", "", id="nothing"),
    pytest.param(b"one\ntwo\n\n", "one\ntwo", id="trailing-blank-lines"),
    pytest.param(b"".join(b"line %d\n" % i for i in range(100)),
                 "\n".join(f"line {i}" for i in range(20, 100)), id="last-80-lines"),
    pytest.param(b"a" * 3000 + b"\nend", ("a" * 3000 + "\nend")[-2048:], id="last-2048-bytes"),
    pytest.param("é".encode() * 1500, "é" * 1024, id="cut-at-a-character"),
])
def test_termination_message(output: bytes, expected: str) -> None:
    message = termination_message(output)
    assert message == expected
    assert len(message.encode()) <= 2048 and len(message.splitlines()) <= 80


@pytest.mark.parametrize(("code", "reason", "exit_code", "has_message"), [
    (2, "Error", 2, True), (0, "Completed", 0, False), (-9, "Error", 137, True),
    (-15, "Error", 143, True),
])
def test_terminated(code: int, reason: str, exit_code: int, has_message: bool) -> None:
    found = terminated(code, "boom", "t0", "t1")
    assert (found["reason"], found["exitCode"], "message" in found) == (
        reason, exit_code, has_message)


def test_back_off_message_is_the_kubelets() -> None:
    assert back_off_message(20, "worker", "p-1", "default", "u") == (
        "back-off 20s restarting failed container=worker pod=p-1_default(u)")


LAST = {"exitCode": 2, "reason": "Error", "message": "bad"}


@pytest.mark.parametrize(("view", "phase", "state", "ready", "started"), [
    pytest.param(ContainerView("worker", "img", False, 0, waiting=(
        "CreateContainerConfigError", 'secret "x" not found')),
        "Pending", {"waiting": {"reason": "CreateContainerConfigError",
                                "message": 'secret "x" not found'}}, "False", False,
        id="never-started"),
    pytest.param(ContainerView("worker", "img", True, 0, running_since="t0",
                               ever_started=True),
                 "Running", {"running": {"startedAt": "t0"}}, "True", True, id="running"),
    pytest.param(ContainerView("worker", "img", False, 3, waiting=(
        "CrashLoopBackOff", "back-off 40s"), last_terminated=LAST, ever_started=True),
        "Running", {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
        "False", False, id="crash-loop-keeps-the-pod-running"),
])
def test_pod_status(view: ContainerView, phase: str, state: dict[str, Any], ready: str,
                    started: bool) -> None:
    status = pod_status(view)
    container = status["containerStatuses"][0]
    assert status["phase"] == phase
    # What core/v1 ContainerStatus requires (kubernetes clients refuse it otherwise).
    assert {"name", "image", "imageID", "ready", "restartCount"} <= set(container)
    assert container["state"] == state
    assert (container["started"], container["restartCount"]) == (started, view.restarts)
    assert container["lastState"] == ({"terminated": LAST} if view.last_terminated else {})
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": ready, "ContainersReady": ready}
