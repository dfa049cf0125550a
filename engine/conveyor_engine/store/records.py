"""Plain records passed to and returned from the store. No I/O, no SQL."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..progress import Transition


@dataclass(frozen=True, slots=True)
class TaskRef:
    """One attempt of one task: the unit the queue carries (``attempt`` is 1-based)."""

    execution_id: str
    task: str
    attempt: int


@dataclass(frozen=True, slots=True)
class ReadyTask:
    """A task recorded ``Ready`` in PostgreSQL that must now be put on ``pool``'s stream of
    the band of ``priority`` (its execution's, see :mod:`conveyor_engine.priorities`)."""

    ref: TaskRef
    pool: str
    priority: int = 0


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claim that PostgreSQL accepted (the task is now ``Running`` for this worker).

    ``resume_from`` is set when a durable timer of this same attempt fired;
    ``execution_started`` is True when this claim moved the execution to ``Running``.
    ``claim`` is the claim's fencing token: the task's claim number, one more than the
    previous claim's; the attempt's outcome is committed only while it is still current.
    ``attempt_base`` is how many attempts the task had before the execution's last retry
    from the failed step (0 before any): its retry policy counts ``attempt - attempt_base``.
    """

    ref: TaskRef
    resume_from: datetime | None
    execution_started: bool
    claim: int = 0
    attempt_base: int = 0


@dataclass(frozen=True, slots=True)
class HeldClaim:
    """A task ``Running`` under a claim of one worker, as read back for a takeover.

    ``claim`` is its fencing token, ``claimed_at`` when that claim began and
    ``lease_until`` its PostgreSQL lease; ``workflow_hash``/``workflow_name`` locate the
    compiled workflow (for the retry policy and the tasks downstream).
    """

    ref: TaskRef
    worker: str
    claim: int
    claimed_at: datetime | None
    lease_until: datetime | None
    workflow_hash: str
    workflow_name: str
    attempt_base: int = 0


@dataclass(frozen=True, slots=True)
class OutcomeRecord:
    """One attempt's outcome, with what the commit needs from the compiled workflow.

    ``dependents`` are the task's direct dependents (their dependency count drops when the
    task Succeeded or was Skipped); ``downstream`` are all transitive dependents (skipped
    when the task fails for good).

    Fencing: with ``claim`` set the task row moves only while its claim number is still
    ``claim``; with ``lease_before`` set, only while its lease ran out before that time
    (how a takeover re-checks, inside the UPDATE, that the lost claim is really abandoned).
    None means no such check (tests of the store only; every worker record has a claim).
    """

    ref: TaskRef
    transition: Transition
    started_at: datetime
    finished_at: datetime
    worker: str
    dependents: tuple[str, ...] = ()
    downstream: tuple[str, ...] = ()
    claim: int | None = None
    lease_before: datetime | None = None
    #: Locks the attempt held (:mod:`conveyor_engine.locks`): the task row moves only while
    #: all of them are still held under ``claim`` (lock fencing), and the commit releases
    #: them. ``lock_lost`` is what the attempt becomes when one was taken from it (``Lost``,
    #: reason ``LockLost``, retried under the task's policy).
    locks: int = 0
    lock_lost: Transition | None = None
    #: The task's stage (``main``, ``onFailure``, ``finally``: :mod:`conveyor_engine.
    #: handlers`) and whether a failure of it lets the run go on (``continueOn.failed``).
    stage: str = "main"
    continue_on_failed: bool = False


@dataclass(frozen=True, slots=True)
class Created:
    """What :meth:`~conveyor_engine.store.Store.create_execution` did.

    ``ready``: tasks to dispatch now (its own roots when it was admitted, and any other
    run's its submission admitted); ``queued``: it waits in its concurrency group's queue;
    ``forbidden``: the message it failed with (``policy: Forbid``); ``cancelled``: runs
    ``policy: Replace`` cancelled, with the names of their tasks cancelled.
    """

    execution_id: str
    created: bool
    ready: list[ReadyTask] = field(default_factory=list)
    queued: bool = False
    forbidden: str | None = None
    cancelled: dict[str, list[str]] = field(default_factory=dict)


@dataclass(slots=True)
class CommitResult:
    """What a batch commit changed, for dispatch and pub/sub after the commit."""

    applied: list[OutcomeRecord] = field(default_factory=list)
    ready: list[ReadyTask] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    finished: dict[str, str] = field(default_factory=dict)
    #: Records refused because the task was claimed again since their claim (fencing: the
    #: claim is no longer current); nothing of them was recorded.
    refused: list[OutcomeRecord] = field(default_factory=list)
    #: Records refused because a lock they held was taken from them (its lease ran out and
    #: another holder took it); each was applied as its ``lock_lost`` transition instead.
    lock_refused: list[OutcomeRecord] = field(default_factory=list)
    #: Queued runs of a concurrency group admitted because a run of it finished (their
    #: ready tasks are in ``ready``), and runs still queued whose place moved.
    admitted: list[str] = field(default_factory=list)
    moved: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ExecutionHeader:
    """The part of an execution a worker needs to run its tasks."""

    execution_id: str
    workflow_name: str
    workflow_hash: str
    pool: str
    inputs: dict[str, Any]
    phase: str
    #: When the run was submitted (``execution.startedAt``) and the Schedule tick that
    #: created it (``execution.scheduledTime``; None otherwise): aware UTC datetimes.
    created_at: datetime | None = None
    scheduled_time: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskState:
    """One task as recorded: phase, current attempt, outputs or error, times."""

    name: str
    type: str
    phase: str
    attempt: int
    outputs: dict[str, Any] | None
    error: str | None
    message: str | None
    started_at: datetime | None
    finished_at: datetime | None
    due_at: datetime | None
    reason: str | None = None
    #: ``main``, ``onFailure`` or ``finally`` (:mod:`conveyor_engine.handlers`).
    stage: str = "main"


@dataclass(frozen=True, slots=True)
class AttemptState:
    """One finished attempt of a task (the history)."""

    task: str
    attempt: int
    outcome: str
    outputs: dict[str, Any] | None
    error: str | None
    worker: str | None
    started_at: datetime | None
    finished_at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ExecutionState:
    """An execution as recorded in PostgreSQL, with its tasks in workflow order."""

    execution_id: str
    idempotency_key: str | None
    workflow_name: str
    workflow_hash: str
    pool: str
    inputs: dict[str, Any]
    phase: str
    message: str | None
    tasks_total: int
    tasks_open: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime
    tasks: tuple[TaskState, ...]
    #: ``spec.suspend``: no task of it starts while True (running ones finish).
    suspended: bool = False
    #: How many times it was retried from its failed step.
    retries: int = 0
    #: Its priority (``spec.priority``; see :mod:`conveyor_engine.priorities`).
    priority: int = 0
    #: Its concurrency group, if any, and whether it waits in the group's queue (then
    #: ``message`` says for how many runs: :func:`conveyor_engine.concurrency.
    #: waiting_message`).
    concurrency_group: str | None = None
    queued: bool = False
    #: Why it waits or ended as it did, when the engine knows more than the phase:
    #: ``ConcurrencyLimit``, ``ConcurrencyForbidden``, ``ConcurrencyReplaced``; else None.
    reason: str | None = None
    #: When its main tasks must have ended (``activeDeadlineSeconds``), or None.
    deadline_at: datetime | None = None
    #: The declared outputs once it Succeeded (None before, or when it declares none and
    #: no reader evaluated them yet).
    outputs: dict[str, Any] | None = None
    #: ``(execution id, task, attempt)`` of the ``workflow`` task whose child it is.
    parent: tuple[str, str, int] | None = None
    depth: int = 0
    scheduled_time: datetime | None = None
    #: ``{task: (child execution id, child phase)}`` of its ``workflow`` tasks (latest
    #: attempt's child), filled by :meth:`Engine.get`.
    children: dict[str, tuple[str, str]] = field(default_factory=dict)

    @property
    def tasks_done(self) -> int:
        """Tasks in a final phase (the numerator of a ``3/5`` progress)."""
        return self.tasks_total - self.tasks_open

    def task(self, name: str) -> TaskState:
        """The task called ``name``; ``KeyError`` when there is none."""
        for task in self.tasks:
            if task.name == name:
                return task
        raise KeyError(name)
