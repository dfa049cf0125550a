"""The status of an Execution (pure): the engine's recorded state, bounded for the API.

Status is small and bounded (at most :data:`MAX_TASKS_IN_STATUS` task summaries, short
messages); the full history lives in PostgreSQL. Each task summary carries the task's
phase, attempts, times, message and the engine's machine-readable ``reason`` (``WorkerLost``)
when it records one. Every builder takes ``now`` so results are
reproducible in tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from conveyor_engine.phases import EXECUTION_FINAL, ExecutionPhase, TaskPhase

from ..reasons import ConditionReason, ConditionType
from .conditions import Condition, merge_conditions, not_ready, rfc3339

if TYPE_CHECKING:
    # For annotations only: the engine's records module pulls in its task types (and so an
    # HTTP client) at run time, which a pure status builder has no use for.
    from conveyor_engine.store.records import ExecutionState, TaskState

#: Task summaries kept on an Execution's status; the CRD's ``maxItems`` says the same.
MAX_TASKS_IN_STATUS = 50
#: Longest task message kept on status (the CRD's ``maxLength``).
MAX_TASK_MESSAGE = 256
#: Longest task reason kept (the CRD's ``maxLength``); the engine's reasons are short words.
MAX_TASK_REASON = 128
MAX_MESSAGE = 1024
#: Largest value of a workflow output kept on status, as JSON (bytes); 64 outputs at most.
MAX_OUTPUT_VALUE_BYTES = 512


def bounded_outputs(outputs: dict[str, Any] | None) -> dict[str, Any] | None:
    """A run's outputs for status: each value whose JSON is larger than
    :data:`MAX_OUTPUT_VALUE_BYTES` is replaced by a note naming its size (the engine keeps
    it whole: ``Engine.get``). None when there are none."""
    if not outputs:
        return None
    kept: dict[str, Any] = {}
    for name, value in outputs.items():
        size = len(json.dumps(value, ensure_ascii=False).encode())
        kept[name] = value if size <= MAX_OUTPUT_VALUE_BYTES else (
            f"(truncated: {size} bytes of JSON, over {MAX_OUTPUT_VALUE_BYTES}; the engine "
            f"keeps the whole value)")
    return kept


def format_duration(seconds: float) -> str:
    """A Go-style duration for humans: ``850ms``, ``12s``, ``3m4s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{max(0, int(seconds * 1000))}ms"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"


def _clip(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class Waiting:
    """Why an Execution has not been submitted: ``reason`` (CamelCase) and a message.

    ``final`` marks reasons that waiting cannot fix (invalid inputs): the Execution fails,
    or, with ``cancelled``, is ``Cancelled`` (``spec.cancel`` before it could start).
    """

    reason: str
    message: str
    final: bool = False
    cancelled: bool = False


def _task_summary(state: ExecutionState) -> list[dict[str, Any]]:
    summary = []
    children = state.children
    for task in state.tasks[:MAX_TASKS_IN_STATUS]:
        item: dict[str, Any] = {"name": task.name, "phase": task.phase, "attempts": task.attempt}
        if task.started_at:
            item["startedAt"] = rfc3339(task.started_at)
        if task.finished_at:
            item["finishedAt"] = rfc3339(task.finished_at)
        message = task.error if task.phase == TaskPhase.FAILED and task.error else task.message
        if message:
            item["message"] = _clip(message, MAX_TASK_MESSAGE)
        if task.reason:
            item["reason"] = task.reason[:MAX_TASK_REASON]  # a constant; never this long
        if task.name in children:
            child_id, child_phase = children[task.name]
            item["child"] = {"executionId": child_id, "phase": child_phase}
        summary.append(item)
    return summary


def _suspension(state: ExecutionState, previous: dict[str, Any]) -> list[Condition]:
    """``Suspended=True`` while an open run is suspended; ``False`` (``Resumed``) once a
    run that was suspended is not; absent for a run never suspended and for a finished
    run (cancelled while suspended, say: it did not continue)."""
    if state.phase in EXECUTION_FINAL:
        return []  # a finished run is neither suspended nor resumed: the condition goes
    if state.suspended:
        return [Condition(ConditionType.SUSPENDED, True, ConditionReason.SUSPENDED,
                          "spec.suspend is true: no task starts; tasks already running "
                          "finish")]
    if any(c.get("type") == ConditionType.SUSPENDED for c in previous.get("conditions") or []):
        return [Condition(ConditionType.SUSPENDED, False, ConditionReason.RESUMED,
                          "spec.suspend is false: the run continues")]
    return []


#: Task reasons that say an open run waits on something shared (a lock another run holds,
#: a rate limit): they become the Execution's own reason.
_WAITING_REASONS = frozenset({ConditionReason.LOCK_HELD, ConditionReason.RATE_LIMITED})


#: Engine reasons a Failed run keeps on its conditions (instead of Failed / TaskFailed).
_FAILED_REASONS = frozenset({ConditionReason.DEADLINE_EXCEEDED, ConditionReason.HANDLER_FAILED,
                             ConditionReason.OUTPUTS_FAILED})


_EXECUTION_ID = re.compile(
    r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b")


def _with_names(text: str, names: Callable[[str], str | None] | None) -> str:
    """``text`` with each engine execution id that ``names`` knows replaced by its
    Execution's ``namespace/name`` (a lock's holder, as a user knows it)."""
    if names is None:
        return text
    return _EXECUTION_ID.sub(lambda m: names(m.group(0)) or m.group(0), text)


def _waiting_task(state: ExecutionState) -> TaskState | None:
    """The first task (workflow order) of an open, admitted run that waits for a lock or a
    rate-limit token while none of its tasks runs; None otherwise. A run with a task
    running is reported as running: the wait is then only part of its story."""
    if state.phase in EXECUTION_FINAL or state.queued:
        return None
    if any(t.phase == TaskPhase.RUNNING for t in state.tasks):
        return None
    return next((t for t in state.tasks
                 if t.phase == TaskPhase.WAITING and t.reason in _WAITING_REASONS), None)


def _failed_task(state: ExecutionState) -> TaskState | None:
    """The failed task whose error explains a Failed run, or None when the run's reason
    says the cause itself: its outputs (``OutputsFailed``: any failed task failed under
    ``continueOn`` and is not the cause), its deadline, its concurrency group. For
    ``HandlerFailed``, the first failed handler task; otherwise the first failed task."""
    if state.phase != ExecutionPhase.FAILED or state.reason in _SELF_EXPLAINED:
        return None
    failed = [t for t in state.tasks if t.phase == TaskPhase.FAILED and t.error]
    if state.reason == ConditionReason.HANDLER_FAILED:
        failed = [t for t in failed if t.stage != "main"] or failed
    return failed[0] if failed else None


#: Reasons of a Failed run whose message already names the cause.
_SELF_EXPLAINED = frozenset({ConditionReason.OUTPUTS_FAILED, ConditionReason.DEADLINE_EXCEEDED,
                             ConditionReason.CONCURRENCY_FORBIDDEN})


def _execution_conditions(phase: str, message: str, state: ExecutionState | None = None
                          ) -> list[Condition]:
    reason = state.reason if state is not None else None
    if phase == ExecutionPhase.SUCCEEDED:
        return [Condition(ConditionType.READY, True, ConditionReason.SUCCEEDED, message)]
    if phase == ExecutionPhase.FAILED and reason == ConditionReason.CONCURRENCY_FORBIDDEN:
        return not_ready(ConditionReason.CONCURRENCY_FORBIDDEN, message, stalled=True)
    if phase == ExecutionPhase.FAILED and reason in _FAILED_REASONS:
        # As batch/v1 Job's Failed condition says DeadlineExceeded.
        return [Condition(ConditionType.READY, False, str(reason), message),
                Condition(ConditionType.STALLED, True, str(reason), message)]
    if phase == ExecutionPhase.FAILED:
        return [Condition(ConditionType.READY, False, ConditionReason.FAILED, message),
                Condition(ConditionType.STALLED, True, ConditionReason.TASK_FAILED, message)]
    if phase == ExecutionPhase.CANCELLED and reason == ConditionReason.CONCURRENCY_REPLACED:
        return not_ready(ConditionReason.CONCURRENCY_REPLACED, message, stalled=True)
    if phase == ExecutionPhase.CANCELLED:
        return not_ready(ConditionReason.CANCELLED, message, stalled=True)
    if state is not None and state.queued:
        # Waiting in its concurrency group's queue: the message says for how many runs.
        return not_ready(ConditionReason.CONCURRENCY_LIMIT, message, stalled=False)
    # An open run: the reason is its phase (Pending, Running).
    return not_ready(phase, message, stalled=False)


def execution_status(
    *,
    generation: int | None,
    state: ExecutionState | None,
    previous: dict[str, Any] | None,
    now: datetime,
    waiting: Waiting | None = None,
    missing_pools: Sequence[str] = (),
    idle_pools: Sequence[str] = (),
    names: Callable[[str], str | None] | None = None,
) -> dict[str, Any]:
    """Status of an Execution from the engine's recorded ``state``.

    Without ``state`` (not submitted yet) the Execution is ``Pending`` with the ``waiting``
    reason, or ``Failed`` when that reason is final. A suspended open run keeps its phase and
    says ``Ready=False``/``Suspended=True`` (reason ``Suspended``); once resumed,
    ``Suspended=False`` (``Resumed``). A run waiting in its concurrency group's queue is
    ``Pending`` with reason ``ConcurrencyLimit`` and the engine's message (``waiting for N
    earlier run(s) of key K ...``); a run its group refused is ``Failed`` with reason
    ``ConcurrencyForbidden``, one a newer run replaced ``Cancelled`` with
    ``ConcurrencyReplaced`` (both ``Stalled``). ``missing_pools`` names WorkerPools
    that open tasks of a submitted execution need and that no longer exist: its phase is
    still the engine's, but its message and conditions say ``PoolNotFound``, since nothing
    will run those tasks until the pool is created again; ``idle_pools`` names pools a
    task of it waits ``Ready`` on while none of their workers has been ready for a while
    (reason ``NoWorkers``); ``names`` maps an engine execution id to its Execution's
    ``namespace/name`` (None: unknown), for the holder a lock wait names. Keys that no
    longer apply are
    set to None so a JSON merge patch (RFC 7386) removes them.
    """
    previous = previous or {}
    if state is None:
        waiting = waiting or Waiting(ConditionReason.SUBMITTING, "submitting to the engine")
        phase = (ExecutionPhase.PENDING if not waiting.final else
                 ExecutionPhase.CANCELLED if waiting.cancelled else ExecutionPhase.FAILED)
        desired = not_ready(waiting.reason, waiting.message, stalled=waiting.final)
        return {
            "observedGeneration": generation,
            "phase": str(phase),
            "message": _clip(waiting.message, MAX_MESSAGE),
            "finishedAt": rfc3339(now) if waiting.final else None,
            "conditions": merge_conditions(previous.get("conditions"), desired,
                                           generation=generation, now=now),
        }
    done, total = state.tasks_done, state.tasks_total
    message = state.message or f"{done} of {total} task(s) finished"
    cause = _failed_task(state)
    if cause is not None:
        message = f"{message}; task {cause.name!r}: {cause.error}"
    duration = None
    if state.started_at:
        end = state.finished_at or now
        duration = format_duration((end - state.started_at).total_seconds())
    conditions = _execution_conditions(state.phase, message, state)
    if missing_pools and state.phase not in EXECUTION_FINAL:
        names = ", ".join(repr(p) for p in missing_pools)
        message = (f"{message}; no WorkerPool named {names}: its tasks wait until it is "
                   f"created again")
        conditions = not_ready(ConditionReason.POOL_NOT_FOUND, message, stalled=False)
    waiter = _waiting_task(state) if not missing_pools else None
    if waiter is not None:
        said = _with_names(waiter.message or str(waiter.reason), names)
        message = f"{message}; task {waiter.name!r}: {said}"
        conditions = not_ready(str(waiter.reason), message, stalled=False)
    elif idle_pools and not missing_pools and state.phase not in EXECUTION_FINAL:
        names = ", ".join(repr(p) for p in idle_pools)
        message = (f"{message}; no worker of WorkerPool {names} is ready: its tasks wait "
                   f"(see the pool's Degraded condition)")
        conditions = not_ready(ConditionReason.NO_WORKERS, message, stalled=False)
    suspension = _suspension(state, previous)
    if suspension and suspension[0].status:
        message = f"suspended: {message}"
        conditions = [Condition(ConditionType.READY, False, ConditionReason.SUSPENDED, message)]
    conditions += suspension
    omitted = max(0, len(state.tasks) - MAX_TASKS_IN_STATUS)
    return {
        "observedGeneration": generation,
        "phase": state.phase,
        "progress": f"{done}/{total}",
        "startedAt": rfc3339(state.started_at) if state.started_at else None,
        "finishedAt": rfc3339(state.finished_at) if state.finished_at else None,
        "duration": duration,
        "message": _clip(message, MAX_MESSAGE),
        "executionId": state.execution_id,
        "workflowHash": state.workflow_hash,
        "tasks": _task_summary(state),
        "tasksOmitted": omitted or None,
        "retries": state.retries or None,
        "outputs": bounded_outputs(state.outputs),
        "conditions": merge_conditions(previous.get("conditions"), conditions,
                                       generation=generation, now=now),
    }
