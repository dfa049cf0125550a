"""The store's commit decisions, as tables (pure: records in, a plan out)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest

from conveyor_engine.phases import AttemptOutcome, ExecutionPhase, TaskPhase
from conveyor_engine.progress import Transition
from conveyor_engine.store import OutcomeRecord, TaskRef
from conveyor_engine.store.decisions import (
    CommitPlan,
    execution_finish,
    initial_task,
    plan_commit,
    released,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)

OK = Transition(TaskPhase.SUCCEEDED, AttemptOutcome.SUCCEEDED)
SKIP = Transition(TaskPhase.SKIPPED, AttemptOutcome.SKIPPED)
FAIL = Transition(TaskPhase.FAILED, AttemptOutcome.FAILED)
RETRY = Transition(TaskPhase.WAITING, AttemptOutcome.FAILED, timer_kind="retry")
SLEEP = Transition(TaskPhase.WAITING, None, timer_kind="resume")


def rec(execution: str, task: str, transition: Transition, dependents: tuple[str, ...] = (),
        downstream: tuple[str, ...] = ()) -> OutcomeRecord:
    return OutcomeRecord(TaskRef(execution, task, 1), transition, NOW, NOW, "w",
                         dependents=dependents, downstream=downstream)


def msg(task: str) -> str:
    return f"skipped: upstream task {task!r} failed"


@pytest.mark.parametrize(("records", "plan"), [
    ([], CommitPlan()),
    # a success closes its task and counts its direct dependents down
    ([rec("e", "a", OK, dependents=("b", "c"), downstream=("b", "c", "d"))],
     CommitPlan(closed=Counter(e=1), executions=("e",),
                countdown=(("e", "b", 1), ("e", "c", 1)))),
    # a skip (when: false) satisfies dependents like a success
    ([rec("e", "a", SKIP, dependents=("b",), downstream=("b",))],
     CommitPlan(closed=Counter(e=1), executions=("e",), countdown=(("e", "b", 1),))),
    # a final failure closes and fails its task and skips everything downstream
    ([rec("e", "a", FAIL, dependents=("b",), downstream=("c", "b"))],
     CommitPlan(closed=Counter(e=1), failed=Counter(e=1), executions=("e",),
                skips=(("e", "b", msg("a")), ("e", "c", msg("a"))))),
    # a retry or a sleep closes nothing and releases nobody, but touches its execution
    ([rec("e", "a", RETRY, dependents=("b",), downstream=("b",)),
      rec("f", "a", SLEEP, dependents=("b",), downstream=("b",))],
     CommitPlan(executions=("e", "f"))),
    # two upstream tasks of one dependent in one batch: its count drops by two
    ([rec("e", "a", OK, dependents=("c",)), rec("e", "b", OK, dependents=("c",))],
     CommitPlan(closed=Counter(e=2), executions=("e",), countdown=(("e", "c", 2),))),
    # a task downstream of two failures is skipped once, naming the first in batch order
    ([rec("e", "b", FAIL, downstream=("z",)), rec("e", "a", FAIL, downstream=("z",))],
     CommitPlan(closed=Counter(e=2), failed=Counter(e=2), executions=("e",),
                skips=(("e", "z", msg("b")),))),
    # executions are kept apart and listed sorted; keys sorted by execution, then task
    ([rec("y", "a", OK, dependents=("b",)), rec("x", "a", FAIL, downstream=("q", "p"))],
     CommitPlan(closed=Counter(x=1, y=1), failed=Counter(x=1), executions=("x", "y"),
                skips=(("x", "p", msg("a")), ("x", "q", msg("a"))),
                countdown=(("y", "b", 1),))),
])
def test_plan_commit(records: list[OutcomeRecord], plan: CommitPlan) -> None:
    assert plan_commit(records) == plan


@pytest.mark.parametrize(("closed", "skipped", "total"), [
    (Counter(), [], Counter()),
    (Counter(e=1), [], Counter(e=1)),
    (Counter(e=1), [("e", "b"), ("e", "c"), ("f", "x")], Counter(e=3, f=1)),
])
def test_closed_counts_the_tasks_actually_skipped(
    closed: Counter, skipped: list[tuple[str, str]], total: Counter
) -> None:
    plan = CommitPlan(closed=closed)
    assert plan.closed_with(skipped) == total
    assert plan.closed == closed, "the plan itself does not change"


@pytest.mark.parametrize(("phase", "deps_open", "counted", "expected"), [
    (TaskPhase.READY, 0, 1, True),  # the last dependency closed now
    (TaskPhase.READY, 0, 2, True),  # the last two closed in one batch
    (TaskPhase.READY, -1, 2, True),  # a count below zero still releases once
    (TaskPhase.READY, -1, 1, False),  # was at zero before: released earlier
    (TaskPhase.PENDING, 1, 1, False),  # dependencies still open
    (TaskPhase.READY, 1, 1, False),
    (TaskPhase.RUNNING, 0, 1, False),  # a retried execution's task already on its way
    (TaskPhase.SKIPPED, 0, 1, False),  # skipped by an upstream failure in the same batch
    (TaskPhase.CANCELLED, 0, 1, False),
    ("Ready", 0, 1, True),  # rows read back hold plain strings
])
def test_released(phase: str, deps_open: int, counted: int, expected: bool) -> None:
    assert released(phase=phase, deps_open=deps_open, counted=counted) is expected


@pytest.mark.parametrize(("open_", "failed", "total", "expected"), [
    (3, 0, 5, None),
    (1, 2, 5, None),  # failures so far do not finish an execution with tasks open
    (0, 0, 5, (ExecutionPhase.SUCCEEDED, "all 5 task(s) succeeded or were skipped")),
    (0, 2, 5, (ExecutionPhase.FAILED, "2 of 5 task(s) failed")),
    (0, 1, 1, (ExecutionPhase.FAILED, "1 of 1 task(s) failed")),
    (-1, 0, 1, (ExecutionPhase.SUCCEEDED, "all 1 task(s) succeeded or were skipped")),
])
def test_execution_finish(open_: int, failed: int, total: int,
                          expected: tuple[ExecutionPhase, str] | None) -> None:
    assert execution_finish(tasks_open=open_, tasks_failed=failed, tasks_total=total) == expected


@pytest.mark.parametrize(("deps", "expected"), [
    (0, (TaskPhase.READY, 1, NOW)),
    (1, (TaskPhase.PENDING, 0, None)),
    (3, (TaskPhase.PENDING, 0, None)),
])
def test_initial_task(deps: int, expected: tuple) -> None:
    assert initial_task(deps, NOW) == expected
