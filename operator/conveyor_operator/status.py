"""Building the status of Workflow and Execution resources: pure functions of their inputs.

Status is small and bounded (at most :data:`MAX_TASKS_IN_STATUS` task summaries, short
messages); the full history lives in PostgreSQL. Every builder takes ``now`` so results are
reproducible in tests.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from conveyor_engine.compiler import CompiledWorkflow
from conveyor_engine.store import ExecutionState

from .conditions import Condition, merge_conditions, rfc3339

#: Task summaries kept on an Execution's status; the CRD's ``maxItems`` says the same.
MAX_TASKS_IN_STATUS = 50
#: Longest task message kept on status (the CRD's ``maxLength``).
MAX_TASK_MESSAGE = 256
MAX_MESSAGE = 1024


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


def workflow_status(
    *,
    generation: int | None,
    workflow: CompiledWorkflow | None,
    problem: str | None,
    previous: dict[str, Any] | None,
    now: datetime,
) -> dict[str, Any]:
    """Status of a Workflow: ``Ready`` when it compiled, else ``Ready=False, InvalidSpec``.

    ``problem`` is the compiler's message (it names the task and field at fault).
    """
    previous = previous or {}
    if workflow is not None:
        version = workflow.content_hash[:19]
        desired = [Condition("Ready", True, "Compiled",
                             f"{len(workflow.tasks)} task(s), version {version}")]
        extra = {"contentHash": workflow.content_hash, "taskCount": len(workflow.tasks)}
    else:
        message = problem or "invalid spec"
        desired = [Condition("Ready", False, "InvalidSpec", message),
                   Condition("Stalled", True, "InvalidSpec", message)]
        extra = {"contentHash": None, "taskCount": None}
    return {
        "observedGeneration": generation,
        **extra,
        "conditions": merge_conditions(previous.get("conditions"), desired,
                                       generation=generation, now=now),
    }


@dataclass(frozen=True, slots=True)
class Waiting:
    """Why an Execution has not been submitted: ``reason`` (CamelCase) and a message.

    ``final`` marks reasons that waiting cannot fix (invalid inputs): the Execution fails.
    """

    reason: str
    message: str
    final: bool = False


def _task_summary(state: ExecutionState) -> list[dict[str, Any]]:
    summary = []
    for task in state.tasks[:MAX_TASKS_IN_STATUS]:
        item: dict[str, Any] = {"name": task.name, "phase": task.phase, "attempts": task.attempt}
        if task.started_at:
            item["startedAt"] = rfc3339(task.started_at)
        if task.finished_at:
            item["finishedAt"] = rfc3339(task.finished_at)
        message = task.error if task.phase == "Failed" and task.error else task.message
        if message:
            item["message"] = _clip(message, MAX_TASK_MESSAGE)
        summary.append(item)
    return summary


def _execution_conditions(phase: str, message: str) -> list[Condition]:
    if phase == "Succeeded":
        return [Condition("Ready", True, "Succeeded", message)]
    if phase == "Failed":
        return [Condition("Ready", False, "Failed", message),
                Condition("Stalled", True, "TaskFailed", message)]
    if phase == "Cancelled":
        return [Condition("Ready", False, "Cancelled", message),
                Condition("Stalled", True, "Cancelled", message)]
    return [Condition("Ready", False, phase, message),
            Condition("Reconciling", True, phase, message)]


def execution_status(
    *,
    generation: int | None,
    state: ExecutionState | None,
    previous: dict[str, Any] | None,
    now: datetime,
    waiting: Waiting | None = None,
    missing_pools: Sequence[str] = (),
) -> dict[str, Any]:
    """Status of an Execution from the engine's recorded ``state``.

    Without ``state`` (not submitted yet) the Execution is ``Pending`` with the ``waiting``
    reason, or ``Failed`` when that reason is final. ``missing_pools`` names WorkerPools
    that open tasks of a submitted execution need and that no longer exist: its phase is
    still the engine's, but its message and conditions say ``PoolNotFound``, since nothing
    will run those tasks until the pool is created again. Keys that no longer apply are
    set to None so a JSON merge patch (RFC 7386) removes them.
    """
    previous = previous or {}
    if state is None:
        waiting = waiting or Waiting("Submitting", "submitting to the engine")
        phase = "Failed" if waiting.final else "Pending"
        if waiting.final:
            desired = [Condition("Ready", False, waiting.reason, waiting.message),
                       Condition("Stalled", True, waiting.reason, waiting.message)]
        else:
            desired = [Condition("Ready", False, waiting.reason, waiting.message),
                       Condition("Reconciling", True, waiting.reason, waiting.message)]
        return {
            "observedGeneration": generation,
            "phase": phase,
            "message": _clip(waiting.message, MAX_MESSAGE),
            "finishedAt": rfc3339(now) if waiting.final else None,
            "conditions": merge_conditions(previous.get("conditions"), desired,
                                           generation=generation, now=now),
        }
    done, total = state.tasks_done, state.tasks_total
    message = state.message or f"{done} of {total} task(s) finished"
    failed = [t for t in state.tasks if t.phase == "Failed"]
    if state.phase == "Failed" and failed and failed[0].error:
        message = f"{message}; task {failed[0].name!r}: {failed[0].error}"
    duration = None
    if state.started_at:
        end = state.finished_at or now
        duration = format_duration((end - state.started_at).total_seconds())
    conditions = _execution_conditions(state.phase, message)
    if missing_pools and state.phase not in _FINAL_EVENTS:
        names = ", ".join(repr(p) for p in missing_pools)
        message = (f"{message}; no WorkerPool named {names}: its tasks wait until it is "
                   f"created again")
        conditions = [Condition("Ready", False, "PoolNotFound", message),
                      Condition("Reconciling", True, "PoolNotFound", message)]
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
        "conditions": merge_conditions(previous.get("conditions"), conditions,
                                       generation=generation, now=now),
    }


@dataclass(frozen=True, slots=True)
class PhaseEvent:
    """A Kubernetes Event to post for a phase change: type Normal|Warning, CamelCase reason."""

    type: str
    reason: str
    message: str


_FINAL_EVENTS = {
    "Succeeded": ("Normal", "Succeeded"),
    "Failed": ("Warning", "Failed"),
    "Cancelled": ("Normal", "Cancelled"),
}


def phase_events(before: str | None, after: str | None, message: str) -> list[PhaseEvent]:
    """The Events announcing a move from phase ``before`` to ``after``, in order.

    ``Started`` once an Execution runs, then ``Succeeded``, ``Failed`` (a Warning) or
    ``Cancelled``. A run that finished between two looks still gets ``Started`` first,
    so every run that ran tells both stories; a run cancelled before it started does not.
    """
    if after == before or after is None:
        return []
    events = []
    if before in (None, "Pending") and after in ("Running", "Succeeded", "Failed"):
        events.append(PhaseEvent("Normal", "Started", "execution started"))
    if after in _FINAL_EVENTS:
        kind, reason = _FINAL_EVENTS[after]
        events.append(PhaseEvent(kind, reason, message))
    return events


def refused_event(message: str) -> PhaseEvent:
    """The one Event for an Execution refused before it started (invalid inputs): a
    ``Failed`` Warning, with no ``Started`` before it since nothing ran."""
    kind, reason = _FINAL_EVENTS["Failed"]
    return PhaseEvent(kind, reason, message)


def status_patch(previous: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``previous`` status into ``desired``.

    Keys equal in both are left out; an empty result means nothing to write. ``None`` in
    ``desired`` deletes a key that ``previous`` has, and is dropped when it has none.
    """
    previous = previous or {}
    patch = {}
    for key, value in desired.items():
        if value is None:
            if previous.get(key) is not None:
                patch[key] = None
        elif previous.get(key) != value:
            patch[key] = value
    return patch


def status_json_patch(uid: str | None, patch: dict[str, Any],
                      present: Collection[str] | None) -> list[dict[str, Any]]:
    """RFC 6902 operations that apply the merge patch ``patch`` (from :func:`status_patch`)
    to the status of the object whose uid is ``uid``.

    ``present`` names the status keys the object has now, or is None when it has no status
    at all (a new object): then the whole status is added at once. ``None`` values remove
    keys that are present and are dropped otherwise. The operations start with a ``test``
    of ``/metadata/uid`` (RFC 6902 section 4.6) when ``uid`` is given: a write meant for a
    deleted object fails (the API server answers 422) instead of landing on a new object
    with the same name. A merge patch cannot carry that guard: the status subresource
    ignores everything outside ``status``, ``metadata.uid`` included.
    """
    ops: list[dict[str, Any]] = []
    if uid:
        ops.append({"op": "test", "path": "/metadata/uid", "value": uid})
    if present is None:
        ops.append({"op": "add", "path": "/status",
                    "value": {k: v for k, v in patch.items() if v is not None}})
        return ops
    for key, value in patch.items():
        path = "/status/" + key.replace("~", "~0").replace("/", "~1")
        if value is not None:
            ops.append({"op": "add", "path": path, "value": value})
        elif key in present:
            ops.append({"op": "remove", "path": path})
    return ops

