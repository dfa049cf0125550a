"""The failure-handling decisions (issue 12 items 3 and 4) as tables: the main DAG's
outcome with continued failures, when handlers run, and the final phase and reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.handlers import (
    Counters,
    EndOfMain,
    Finish,
    deadline_at,
    deadline_message,
    main_outcome,
    next_step,
)


@pytest.mark.parametrize(("failed", "continued", "phase", "words"), [
    (0, 0, "Succeeded", "all 4 task(s) succeeded or were skipped"),
    (0, 1, "Succeeded", "1 of 4 task(s) failed with continueOn.failed (the run went on)"),
    (2, 0, "Failed", "2 of 4 task(s) failed"),
    (1, 1, "Failed", "1 of 4 task(s) failed; 1 more failed with continueOn.failed"),
])
def test_main_outcome(failed: int, continued: int, phase: str, words: str) -> None:
    got_phase, message = main_outcome(failed=failed, continued=continued, total=4)
    assert got_phase == phase and words in message


END_FAIL = EndOfMain("Failed", "1 of 2 task(s) failed", ("onFailure", "finally"), ())
END_OK = EndOfMain("Succeeded", "all 2 task(s) succeeded or were skipped", ("finally",),
                   ("onFailure",))


@pytest.mark.parametrize(("counters", "step"), [
    # main tasks still open (2 rows of 4 are handlers)
    (Counters(tasks_open=3, tasks_total=4, handlers_total=2), None),
    # no handlers: finish at once, as before
    (Counters(tasks_open=0, tasks_total=2, tasks_failed=1),
     Finish("Failed", "1 of 2 task(s) failed")),
    (Counters(tasks_open=0, tasks_total=2, continued=1),
     Finish("Succeeded", "succeeded: 1 of 2 task(s) failed with continueOn.failed (the run "
                         "went on); the others succeeded or were skipped")),
    # the main DAG ended: handlers run
    (Counters(tasks_open=2, tasks_total=4, handlers_total=2, tasks_failed=1), END_FAIL),
    (Counters(tasks_open=2, tasks_total=4, handlers_total=2), END_OK),
    # handlers running
    (Counters(tasks_open=1, tasks_total=4, handlers_total=2, outcome="Failed",
              outcome_message="m"), None),
    # handlers done: the main outcome stays, a handler failure is added, never hides it
    (Counters(tasks_open=0, tasks_total=4, handlers_total=2, outcome="Failed",
              outcome_message="deadline exceeded", reason="DeadlineExceeded"),
     Finish("Failed", "deadline exceeded", "DeadlineExceeded")),
    (Counters(tasks_open=0, tasks_total=4, handlers_total=2, handlers_failed=1,
              outcome="Failed", outcome_message="1 of 2 task(s) failed"),
     Finish("Failed", "1 of 2 task(s) failed; 1 of 2 handler task(s) failed")),
    (Counters(tasks_open=0, tasks_total=4, handlers_total=2, handlers_failed=1,
              outcome="Succeeded", outcome_message="all 2 task(s) succeeded"),
     Finish("Failed", "all 2 task(s) succeeded; 1 of 2 handler task(s) failed",
            "HandlerFailed")),
])
def test_next_step(counters: Counters, step: object) -> None:
    assert next_step(counters) == step


def test_deadline() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    assert deadline_at(start, None) is None
    assert deadline_at(start, 30) == start + timedelta(seconds=30)
    assert deadline_message(30, 2) == ("deadline exceeded: activeDeadlineSeconds (30s) "
                                       "passed; 2 open task(s) cancelled")
