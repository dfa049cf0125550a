"""When a finished Execution is deleted: ``ttlSecondsAfterFinished`` (pure decisions).

As batch/v1 Job's ``spec.ttlSecondsAfterFinished`` (Kubernetes docs, "Automatic Cleanup for
Finished Jobs"): an Execution that finished (``Succeeded``, ``Failed`` or ``Cancelled``) is
deleted by the operator that many seconds after its ``status.finishedAt``; 0 deletes it as
soon as it is seen finished. The Execution's own ``spec.ttlSecondsAfterFinished`` wins, then
its Workflow's ``spec.executionDefaults.ttlSecondsAfterFinished``; with neither it is kept.

Deleting the object never deletes history: the run stays in PostgreSQL (readable through
the engine API) until the engine's retention job removes it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from conveyor_engine.phases import EXECUTION_FINAL, ExecutionPhase


def effective_ttl(execution_ttl: int | None, workflow_default: int | None) -> int | None:
    """Seconds after finishing when the Execution is deleted, or None (kept): the
    Execution's own value, else its Workflow's default."""
    return execution_ttl if execution_ttl is not None else workflow_default


def deletion_due(phase: str | None, finished_at: datetime | None,
                 ttl: int | None) -> datetime | None:
    """When an Execution in ``phase`` that finished at ``finished_at`` is due for deletion,
    or None (not finished, no finish time, or no TTL)."""
    if ttl is None or finished_at is None or phase is None:
        return None
    if ExecutionPhase(phase) not in EXECUTION_FINAL:
        return None
    return finished_at + timedelta(seconds=ttl)


def seconds_until(due: datetime, now: datetime) -> float:
    """Seconds from ``now`` to ``due``; 0 when it is already due."""
    return max(0.0, (due - now).total_seconds())


def finished_at(status: dict[str, Any]) -> datetime | None:
    """``status.finishedAt`` (RFC 3339) as an aware datetime, or None when absent or bad."""
    value = status.get("finishedAt")
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
