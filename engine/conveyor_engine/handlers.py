"""Failure handling and deadlines, as pure decisions (issue 12, items 3 and 4). No I/O.

A workflow's tasks are in one of three *stages* (``tasks.stage`` in PostgreSQL):

* ``main``: the DAG of ``spec.tasks``;
* ``onFailure``: ``spec.onFailure``, run once the main DAG has ended, only when it failed;
* ``finally``: ``spec.finally``, run once the main DAG has ended, whatever its outcome.

The handler lists run side by side (each may use ``dependsOn`` within its own list). A
handler row is created ``Pending`` with one extra dependency, the *gate*: the end of the
main DAG counts it down (:func:`end_of_main`). Followed: Tekton's ``finally`` tasks (run
after all pipeline tasks, in parallel, see their results, their failure fails the run) and
Argo Workflows' ``onExit`` (sees ``workflow.status`` and ``workflow.failures``). Two lists
rather than one ``onExit`` with a condition, so the common case needs no expression and the
compiler knows which handlers may run.

The execution's final phase (:func:`main_outcome`, :func:`final_outcome`) follows Argo's
``continueOn`` rule: the main DAG succeeded when every task without ``continueOn.failed``
succeeded or was skipped; a failed handler makes a run that had succeeded ``Failed``
(reason ``HandlerFailed``), and never hides the failure of a run that had failed: its
phase, reason (``DeadlineExceeded``) and message stay, the handlers' failures appended.

The deadline (``activeDeadlineSeconds``, as batch/v1 Job's and Argo's field; Temporal's
workflow run timeout) bounds the main DAG only, counted from the run's admission; handlers
are not interrupted by it (bound them with their own ``timeout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from .phases import ExecutionPhase

MAIN = "main"
ON_FAILURE = "onFailure"
FINALLY = "finally"
#: Every stage, in the order the spec lists them.
STAGES = (MAIN, ON_FAILURE, FINALLY)
#: The handler stages.
HANDLER_STAGES = (ON_FAILURE, FINALLY)

#: The execution's ``reason`` when its deadline passed (batch/v1 Job's condition reason).
DEADLINE_EXCEEDED = "DeadlineExceeded"
#: The execution's ``reason`` when its main DAG succeeded and a handler task failed.
HANDLER_FAILED = "HandlerFailed"


@dataclass(frozen=True, slots=True)
class Counters:
    """An execution's counters as a batch commit reads them back.

    ``tasks_open``/``tasks_total`` count every task row, handlers included;
    ``handlers_total`` the handler rows; ``tasks_failed`` main tasks failed for good
    without ``continueOn``; ``continued`` main tasks failed with it; ``handlers_failed``
    handler tasks failed. ``outcome`` is the main DAG's phase once it ended (None before),
    with ``outcome_message`` and ``reason`` (``DeadlineExceeded`` or None).
    """

    tasks_open: int
    tasks_total: int
    tasks_failed: int = 0
    handlers_total: int = 0
    handlers_failed: int = 0
    continued: int = 0
    outcome: str | None = None
    outcome_message: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class EndOfMain:
    """The main DAG just ended and handlers exist: record ``outcome``/``message``, count
    the gate of the ``run`` stages down and skip the ``skip`` stages' tasks."""

    outcome: ExecutionPhase
    message: str
    run: tuple[str, ...]
    skip: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Finish:
    """The execution is over: its final ``phase``, ``message`` and ``reason`` (None)."""

    phase: ExecutionPhase
    message: str
    reason: str | None = None


def main_outcome(*, failed: int, continued: int, total: int) -> tuple[ExecutionPhase, str]:
    """Phase and message of a main DAG of ``total`` tasks that ended with ``failed`` tasks
    failed without ``continueOn`` and ``continued`` failed with it."""
    also = (f"; {continued} more failed with continueOn.failed" if continued else "")
    if failed:
        return ExecutionPhase.FAILED, f"{failed} of {total} task(s) failed{also}"
    if continued:
        return (ExecutionPhase.SUCCEEDED,
                f"succeeded: {continued} of {total} task(s) failed with continueOn.failed "
                f"(the run went on); the others succeeded or were skipped")
    return ExecutionPhase.SUCCEEDED, f"all {total} task(s) succeeded or were skipped"


def stages_after(outcome: ExecutionPhase) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(stages that run, stages skipped)`` once the main DAG ended with ``outcome``."""
    if outcome == ExecutionPhase.SUCCEEDED:
        return (FINALLY,), (ON_FAILURE,)
    return (ON_FAILURE, FINALLY), ()


def final_outcome(*, outcome: str, message: str, reason: str | None, handlers_failed: int,
                  handlers_run: int) -> Finish:
    """How a run whose handlers all ended finishes: the main outcome, unless a handler
    failed after a success (then ``Failed``, reason ``HandlerFailed``). A failure of the
    main DAG is never hidden: its phase, reason and message stay first."""
    if not handlers_failed:
        return Finish(ExecutionPhase(outcome), message, reason)
    said = f"{message}; {handlers_failed} of {handlers_run} handler task(s) failed"
    if outcome == ExecutionPhase.SUCCEEDED:
        return Finish(ExecutionPhase.FAILED, said, HANDLER_FAILED)
    return Finish(ExecutionPhase(outcome), said, reason)


def next_step(c: Counters, *, handlers_run: int | None = None) -> EndOfMain | Finish | None:
    """What a commit does to a running execution with counters ``c``: nothing (None) while
    main tasks or running handlers are open; :class:`EndOfMain` when the main DAG just
    ended and there are handlers; :class:`Finish` when nothing is left open.
    ``handlers_run`` is how many handlers ran (default: every handler)."""
    if c.outcome is None:
        if c.tasks_open - c.handlers_total > 0:
            return None
        phase, message = main_outcome(failed=c.tasks_failed, continued=c.continued,
                                      total=c.tasks_total - c.handlers_total)
        if c.handlers_total == 0:
            return Finish(phase, message, c.reason)
        run, skip = stages_after(phase)
        return EndOfMain(phase, message, run, skip)
    if c.tasks_open > 0:
        return None
    return final_outcome(outcome=c.outcome, message=c.outcome_message or "", reason=c.reason,
                         handlers_failed=c.handlers_failed,
                         handlers_run=c.handlers_total if handlers_run is None else handlers_run)


def deadline_at(admitted: datetime, seconds: int | None) -> datetime | None:
    """When a run admitted at ``admitted`` with ``activeDeadlineSeconds`` ``seconds``
    (None: no deadline) must have ended its main DAG."""
    return None if seconds is None else admitted + timedelta(seconds=seconds)


def deadline_message(seconds: int | None, cancelled: int) -> str:
    """The message of a run whose deadline passed, naming the field and what it stopped."""
    limit = f"{seconds}s" if seconds is not None else "its deadline"
    return (f"deadline exceeded: activeDeadlineSeconds ({limit}) passed; "
            f"{cancelled} open task(s) cancelled")


def deadline_task_message(seconds: int | None) -> str:
    """The message of a task cancelled because its run's deadline passed."""
    limit = f"{seconds}s" if seconds is not None else "its deadline"
    return f"cancelled: the run's activeDeadlineSeconds ({limit}) passed"


def skipped_handler_message(stage: str) -> str:
    """The message of a handler task skipped because its stage does not run."""
    return f"skipped: {stage} tasks run only when the run fails, and it succeeded"
