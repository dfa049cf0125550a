"""The decisions a batch commit makes, as pure functions. No I/O, no SQL; tested as tables.

The store (:mod:`.outcomes`, :mod:`.executions`) runs the SQL; what that SQL writes is
decided here, from the records and the rows it read back:

* which tasks a batch of applied outcomes closes and fails, per execution
  (:func:`plan_commit`);
* which tasks are skipped because a task upstream failed for good, and with what message;
* how much each dependent's open-dependency count drops (``deps_open``), and when a
  dependent counts as released (:func:`released`);
* how an execution finishes once no task is open, and its finish message
  (:func:`execution_finish`);
* how a task row starts when an execution is created (:func:`initial_task`);
* which tasks a retry from the failed step runs again, and how each starts
  (:func:`retry_plan`).

Rules (from :mod:`conveyor_engine.progress`, pinned end to end by
``tests/integration/test_store.py``): a final failure skips every ``Pending`` task downstream
of it; a task that Succeeded or was Skipped satisfies its direct dependents; an execution
whose tasks are all final Failed if any task failed, else Succeeded.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..handlers import MAIN
from ..phases import SATISFIES_DEPENDENTS, ExecutionPhase, TaskPhase
from ..progress import execution_phase, upstream_failure_message
from .records import OutcomeRecord

#: ``(execution id, task name)``: a task row's key.
TaskKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class CommitPlan:
    """What a batch of applied outcomes does beyond its own task rows.

    ``closed``/``failed``: per execution id, how many of the batch's own tasks reached a
    final phase and how many of those Failed (``tasks_open`` drops by ``closed`` plus the
    tasks actually skipped; ``tasks_failed`` grows by ``failed``). ``executions``: every
    execution touched, sorted. ``skips``: ``(execution id, task, message)`` of tasks to skip,
    sorted by key (the SQL skips only those still ``Pending``). ``countdown``:
    ``(execution id, task, n)``: a dependent's ``deps_open`` drops by ``n``, sorted by key.
    Sorted so that concurrent batches lock rows in one order, which keeps deadlocks rare.
    """

    closed: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    #: Main tasks failed with ``continueOn.failed``, and handler tasks failed (neither
    #: counts in ``failed``), per execution.
    continued: Counter[str] = field(default_factory=Counter)
    handlers_failed: Counter[str] = field(default_factory=Counter)
    executions: tuple[str, ...] = ()
    skips: tuple[tuple[str, str, str], ...] = ()
    countdown: tuple[tuple[str, str, int], ...] = ()

    def closed_with(self, skipped: Iterable[TaskKey]) -> Counter[str]:
        """``closed`` plus one per task actually skipped (``skipped``: the rows moved)."""
        total = Counter(self.closed)
        total.update(execution_id for execution_id, _ in skipped)
        return total


def plan_commit(applied: Iterable[OutcomeRecord]) -> CommitPlan:
    """Plan the effects of ``applied`` (the records whose task rows moved).

    A task downstream of several failures is skipped once, its message naming the first
    failed task in batch order. Counts toward a dependent add up over the batch. A task
    with ``continueOn.failed`` that failed satisfies its dependents like a success (Argo's
    ``continueOn``) and skips nothing; a handler task's failure counts apart.
    """
    closed: Counter[str] = Counter()
    failed: Counter[str] = Counter()
    continued: Counter[str] = Counter()
    handlers_failed: Counter[str] = Counter()
    touched: set[str] = set()
    skips: dict[TaskKey, str] = {}
    countdown: Counter[TaskKey] = Counter()
    for record in applied:
        execution_id, phase = record.ref.execution_id, record.transition.phase
        touched.add(execution_id)
        if record.transition.final:
            closed[execution_id] += 1
        goes_on = phase == TaskPhase.FAILED and record.continue_on_failed
        if phase == TaskPhase.FAILED:
            (handlers_failed if record.stage != MAIN else continued if goes_on
             else failed)[execution_id] += 1
            if not goes_on:
                for name in record.downstream:
                    skips.setdefault((execution_id, name), record.ref.task)
        if phase in SATISFIES_DEPENDENTS or goes_on:
            for name in record.dependents:
                countdown[(execution_id, name)] += 1
    return CommitPlan(
        closed=closed,
        failed=failed,
        continued=continued,
        handlers_failed=handlers_failed,
        executions=tuple(sorted(touched)),
        skips=tuple((eid, name, upstream_failure_message(skips[eid, name]))
                    for eid, name in sorted(skips)),
        countdown=tuple((eid, name, countdown[eid, name]) for eid, name in sorted(countdown)),
    )


def released(*, phase: str, deps_open: int, counted: int) -> bool:
    """True when a dependent row read back after its countdown was just made ``Ready``.

    ``deps_open`` is the count after this countdown and ``counted`` how much it dropped by:
    the countdown releases a ``Pending`` task whose count crosses zero now, so a row that
    was already at zero before (``Ready`` or beyond) is not released again.
    """
    return phase == TaskPhase.READY and deps_open <= 0 < deps_open + counted


def execution_finish(
    *, tasks_open: int, tasks_failed: int, tasks_total: int
) -> tuple[ExecutionPhase, str] | None:
    """``(final phase, message)`` of a running execution with these counters, or None while
    tasks are open. The message counts failures, e.g. ``2 of 5 task(s) failed``."""
    phase = execution_phase(tasks_open=tasks_open, tasks_failed=tasks_failed, started=True)
    if phase == ExecutionPhase.FAILED:
        return phase, f"{tasks_failed} of {tasks_total} task(s) failed"
    if phase == ExecutionPhase.SUCCEEDED:
        return phase, f"all {tasks_total} task(s) succeeded or were skipped"
    return None


def initial_task(
    deps: int, now: datetime
) -> tuple[TaskPhase, int, datetime | None]:
    """``(phase, attempt, due_at)`` of a new task row with ``deps`` dependencies.

    A task without dependencies starts ``Ready`` at attempt 1, due now (it is dispatched at
    once); any other waits ``Pending`` at attempt 0 for its dependencies.
    """
    if deps == 0:
        return TaskPhase.READY, 1, now
    return TaskPhase.PENDING, 0, None


@dataclass(frozen=True, slots=True)
class RetryReset:
    """One task a retry from the failed step runs again: ``Ready`` (no dependency runs
    again) or ``Pending`` with ``deps_open`` dependencies that run again first."""

    name: str
    phase: TaskPhase
    deps_open: int


def retry_plan(phases: Mapping[str, str], depends_on: Mapping[str, Sequence[str]],
               handlers: frozenset[str] = frozenset()) -> list[RetryReset]:
    """The tasks a retry of a finished execution runs again, sorted by name.

    ``phases`` is every task's recorded phase, ``depends_on`` each task's direct
    dependencies (from the compiled workflow). Every task that did not succeed (``Failed``,
    ``Skipped``, ``Cancelled``) runs again; a task that succeeded keeps its recorded
    outputs and is not run again (Argo Workflows' ``retry`` and Temporal's reset keep
    completed work the same way). A task skipped by its own ``when`` runs again too: its
    condition is evaluated again, with the same inputs, and skips it again. A dependency
    that runs again holds its dependent ``Pending``; a task whose dependencies all
    succeeded is ``Ready`` at once. An empty list means there is nothing to retry.
    ``handlers`` (``onFailure``/``finally`` tasks) run again whenever anything does, each
    ``Pending`` behind its gate (the end of the main tasks) plus its own dependencies.
    """
    again = {name for name, phase in phases.items()
             if phase != TaskPhase.SUCCEEDED and name not in handlers}
    if not again:
        return []
    again |= handlers & phases.keys()
    plan = []
    for name in sorted(again):
        waiting_on = sum(1 for dep in depends_on.get(name, ()) if dep in again)
        waiting_on += name in handlers
        plan.append(RetryReset(name, TaskPhase.PENDING if waiting_on else TaskPhase.READY,
                               waiting_on))
    return plan
