"""When a finished Execution is deleted: ``ttlSecondsAfterFinished`` (pure decisions).

As batch/v1 Job's ``spec.ttlSecondsAfterFinished`` (Kubernetes docs, "Automatic Cleanup for
Finished Jobs"): an Execution that finished (``Succeeded``, ``Failed`` or ``Cancelled``) is
deleted by the operator that many seconds after its ``status.finishedAt``; 0 deletes it as
soon as it is seen finished. The Execution's own ``spec.ttlSecondsAfterFinished`` wins, then
its Workflow's ``spec.executionDefaults.ttlSecondsAfterFinished``, then its Namespace's
annotation ``conveyor.dev/ttl-seconds-after-finished`` (:data:`NAMESPACE_ANNOTATION`, a
decimal string such as ``"3600"``); with none of them it is kept. An annotation value that is
not a whole number of seconds in the field's range counts as unset (:func:`namespace_ttl`
says why, for the log line and the Warning Event the caller reports it with).

Deleting the object never deletes history: the run stays in PostgreSQL (readable through
the engine API) until the engine's retention job removes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from conveyor_engine.phases import EXECUTION_FINAL, ExecutionPhase

#: The Namespace annotation whose value is the default ``ttlSecondsAfterFinished`` of every
#: Execution in that namespace (after the Execution's own value and its Workflow's default).
NAMESPACE_ANNOTATION = "conveyor.dev/ttl-seconds-after-finished"
#: The largest TTL: the spec fields are ``int32`` (as batch/v1 Job's), so is the annotation.
MAX_TTL_SECONDS = 2**31 - 1


def effective_ttl(execution_ttl: int | None, workflow_default: int | None,
                  namespace_default: int | None = None) -> int | None:
    """Seconds after finishing when the Execution is deleted, or None (kept): the
    Execution's own value, else its Workflow's default, else its Namespace's (0 is a value,
    not "unset", at every level)."""
    for ttl in (execution_ttl, workflow_default, namespace_default):
        if ttl is not None:
            return ttl
    return None


def namespace_ttl(annotations: Mapping[str, str] | None) -> tuple[int | None, str | None]:
    """A Namespace's default TTL from its ``metadata.annotations``: ``(seconds, None)``;
    ``(None, None)`` without :data:`NAMESPACE_ANNOTATION`; ``(None, problem)`` when its value
    is not a decimal whole number from 0 to :data:`MAX_TTL_SECONDS` (no sign, no unit,
    surrounding blanks allowed), ``problem`` naming the annotation, the value and what is
    accepted. A bad value counts as unset: the Execution is kept."""
    value = (annotations or {}).get(NAMESPACE_ANNOTATION)
    if value is None:
        return None, None
    text = str(value).strip()
    if text.isascii() and text.isdigit() and int(text) <= MAX_TTL_SECONDS:
        return int(text), None
    return None, (f"annotation {NAMESPACE_ANNOTATION}={str(value)!r} is not a whole number of "
                  f"seconds from 0 to {MAX_TTL_SECONDS} (such as \"3600\"); "
                  f"it is ignored, so the namespace gives no default")


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
