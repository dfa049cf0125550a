"""The pure decisions of task and execution progress, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.progress import (
    WORKER_LOST,
    LostAttempt,
    SkippedByCondition,
    Transition,
    execution_phase,
    transition_for,
)
from conveyor_engine.tasktypes.base import Failed, Succeeded, Suspended

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("limit", "attempt", "outcome", "phase", "attempt_outcome", "due", "timer"),
    [
        (0, 1, Succeeded({"x": 1}), "Succeeded", "Succeeded", None, None),
        (3, 2, Succeeded(), "Succeeded", "Succeeded", None, None),
        (0, 1, SkippedByCondition("false"), "Skipped", "Skipped", None, None),
        (0, 1, Failed("boom"), "Failed", "Failed", None, None),
        (2, 1, Failed("boom"), "Waiting", "Failed", NOW + timedelta(seconds=1.5), "retry"),
        (2, 2, Failed("boom"), "Waiting", "Failed", NOW + timedelta(seconds=1.5), "retry"),
        (2, 3, Failed("boom"), "Failed", "Failed", None, None),
        (5, 1, Failed("bad input", retryable=False), "Failed", "Failed", None, None),
        (0, 1, Suspended(NOW + timedelta(seconds=2)), "Waiting", None,
         NOW + timedelta(seconds=2), "resume"),
        # A timer already in the past fires now rather than in the past.
        (0, 1, Suspended(NOW - timedelta(seconds=2)), "Waiting", None, NOW, "resume"),
    ],
)
def test_transition_table(limit, attempt, outcome, phase, attempt_outcome, due, timer) -> None:
    t = transition_for(retry_limit=limit, backoff_seconds=1.5, attempt=attempt,
                       outcome=outcome, now=NOW)
    assert (t.phase, t.attempt_outcome, t.due_at, t.timer_kind) == (
        phase, attempt_outcome, due, timer)
    assert t.final == (phase in {"Succeeded", "Failed", "Skipped"})


def test_transition_keeps_outputs_and_bounds_error_text() -> None:
    ok = transition_for(retry_limit=0, backoff_seconds=0, attempt=1,
                        outcome=Succeeded({"a": [1]}), now=NOW)
    assert ok.outputs == {"a": [1]}
    bad = transition_for(retry_limit=0, backoff_seconds=0, attempt=1,
                         outcome=Failed("x" * 10_000), now=NOW)
    assert len(bad.error) == 4000 and bad.outputs is None
    assert "failed after 1 attempt(s)" in bad.message


def test_retry_message_says_which_retry_and_when() -> None:
    t = transition_for(retry_limit=3, backoff_seconds=4, attempt=2, outcome=Failed("503"),
                       now=NOW)
    assert t.message.startswith("attempt 2 failed, retry 2 of 3 in 4s")


def test_not_retryable_failure_says_so() -> None:
    t = transition_for(retry_limit=3, backoff_seconds=1, attempt=1,
                       outcome=Failed("bad", retryable=False), now=NOW)
    assert t == Transition("Failed", "Failed", error="bad",
                           message="failed after 1 attempt(s) (not retryable): bad")


@pytest.mark.parametrize(
    ("open_", "failed", "started", "phase"),
    [
        (3, 0, False, "Pending"),
        (3, 0, True, "Running"),
        (1, 1, True, "Running"),
        (0, 0, True, "Succeeded"),
        (0, 2, True, "Failed"),
        (0, 0, False, "Succeeded"),
    ],
)
def test_execution_phase_table(open_, failed, started, phase) -> None:
    assert execution_phase(tasks_open=open_, tasks_failed=failed, started=started) == phase


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"a": "x\x00y"}, {"a": "x\ufffdy"}),
        ({"k\x00": [1, 2.5, None, True]}, {"k\ufffd": [1, 2.5, None, True]}),
        ({"n": 2**63 - 1}, {"n": 2**63 - 1}),
    ],
)
def test_storable_outputs(value: object, expected: object) -> None:
    from conveyor_engine.outputs import storable

    assert storable(value) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"n": 2**64}, "outputs.n: integer 18446744073709551616 does not fit in 64 bits"),
        ({"f": float("nan")}, "outputs.f: nan is not a JSON number"),
        ({"deep": [[[[]]]]}, None),
        ({"x": object()}, "outputs.x: object is not a JSON value"),
    ],
)
def test_unstorable_outputs_are_named(value: object, message: str | None) -> None:
    from conveyor_engine.outputs import UnstorableOutput, storable

    if message is None:  # shallow nesting is fine
        storable(value)
        return
    with pytest.raises(UnstorableOutput) as caught:
        storable(value)
    assert str(caught.value) == message


def test_too_deep_output_is_refused() -> None:
    from conveyor_engine.outputs import UnstorableOutput, storable

    deep: list = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(UnstorableOutput, match="nested deeper than 200 levels"):
        storable({"d": deep})


# -- lost attempts (issue 9, item 2): they count against retry.limit -------------------------


@pytest.mark.parametrize(("limit", "attempt", "retryable", "phase", "due", "timer"), [
    (0, 1, True, "Failed", None, None),           # no retries: the task fails WorkerLost
    (1, 1, True, "Waiting", NOW + timedelta(seconds=1.5), "retry"),  # attempt 2 follows
    (1, 2, True, "Failed", None, None),           # the retry was lost too: no more left
    (3, 1, False, "Failed", None, None),          # a dead letter fails at once
])
def test_lost_attempt_table(limit: int, attempt: int, retryable: bool, phase: str,
                            due: datetime | None, timer: str | None) -> None:
    t = transition_for(retry_limit=limit, backoff_seconds=1.5, attempt=attempt,
                       outcome=LostAttempt("worker w stopped renewing", retryable), now=NOW)
    assert (t.phase, t.attempt_outcome, t.reason, t.due_at, t.timer_kind) == (
        phase, "Lost", WORKER_LOST, due, timer)
    assert t.error == "WorkerLost: worker w stopped renewing"
    assert t.message.startswith(f"attempt {attempt} lost, retry" if phase == "Waiting"
                                else f"failed after {attempt} attempt(s), the last lost")
