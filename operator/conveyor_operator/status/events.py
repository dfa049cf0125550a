"""The Kubernetes Events the operator posts about Executions (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from conveyor_engine.phases import ExecutionPhase

from ..reasons import EventReason, EventType


@dataclass(frozen=True, slots=True)
class PhaseEvent:
    """A Kubernetes Event to post: type Normal|Warning, CamelCase reason, message."""

    type: str
    reason: str
    message: str


#: The Event each final phase is announced with.
_FINAL_EVENTS: dict[str, tuple[EventType, EventReason]] = {
    ExecutionPhase.SUCCEEDED: (EventType.NORMAL, EventReason.SUCCEEDED),
    ExecutionPhase.FAILED: (EventType.WARNING, EventReason.FAILED),
    ExecutionPhase.CANCELLED: (EventType.NORMAL, EventReason.CANCELLED),
}
#: Phases after which an Execution has run (so it gets a ``Started`` Event first).
_RAN = frozenset({ExecutionPhase.RUNNING, ExecutionPhase.SUCCEEDED, ExecutionPhase.FAILED})


def _event(kind: EventType, reason: EventReason, message: str) -> PhaseEvent:
    return PhaseEvent(str(kind), str(reason), message)


#: Final Events whose reason the engine's own reason replaces (concurrency groups).
_REASONED_EVENTS: dict[tuple[str, str], tuple[EventType, EventReason]] = {
    (ExecutionPhase.FAILED, EventReason.CONCURRENCY_FORBIDDEN):
        (EventType.WARNING, EventReason.CONCURRENCY_FORBIDDEN),
    (ExecutionPhase.CANCELLED, EventReason.CONCURRENCY_REPLACED):
        (EventType.NORMAL, EventReason.CONCURRENCY_REPLACED),
    (ExecutionPhase.FAILED, EventReason.DEADLINE_EXCEEDED):
        (EventType.WARNING, EventReason.DEADLINE_EXCEEDED),
    (ExecutionPhase.FAILED, EventReason.HANDLER_FAILED):
        (EventType.WARNING, EventReason.HANDLER_FAILED),
}


def phase_events(before: str | None, after: str | None, message: str,
                 reason: str | None = None) -> list[PhaseEvent]:
    """The Events announcing a move from phase ``before`` to ``after``, in order.

    ``Started`` once an Execution runs, then ``Succeeded``, ``Failed`` (a Warning) or
    ``Cancelled``. A run that finished between two looks still gets ``Started`` first,
    so every run that ran tells both stories; a run cancelled before it started does not.
    ``reason`` is the engine's reason for the run's end, if any: a run its concurrency
    group refused gets one ``ConcurrencyForbidden`` Warning (it never started); one a
    newer run replaced gets ``ConcurrencyReplaced`` instead of ``Cancelled``.
    """
    if after == before or after is None:
        return []
    reasoned = _REASONED_EVENTS.get((after, reason or ""))
    events = []
    if (before in (None, ExecutionPhase.PENDING) and after in _RAN
            and reason != EventReason.CONCURRENCY_FORBIDDEN):
        events.append(_event(EventType.NORMAL, EventReason.STARTED, "execution started"))
    if reasoned is not None:
        events.append(_event(*reasoned, message))
    elif after in _FINAL_EVENTS:
        events.append(_event(*_FINAL_EVENTS[after], message))
    return events


def refused_event(message: str) -> PhaseEvent:
    """The one Event for an Execution refused before it started (invalid inputs): a
    ``Failed`` Warning, with no ``Started`` before it since nothing ran."""
    return _event(*_FINAL_EVENTS[ExecutionPhase.FAILED], message)


def lifecycle_event(reason: EventReason, message: str) -> PhaseEvent:
    """A ``Normal`` Event for a lifecycle change the spec asked for (``Suspended``,
    ``Resumed``, ``Retried``)."""
    return _event(EventType.NORMAL, reason, message)


def ttl_annotation_event(problem: str) -> PhaseEvent:
    """The Warning posted on a finished Execution whose Namespace's TTL annotation is bad
    (``problem`` from :func:`conveyor_operator.ttl.namespace_ttl`): why it is kept."""
    return _event(EventType.WARNING, EventReason.INVALID_TTL_ANNOTATION,
                  f"namespace default ttlSecondsAfterFinished: {problem}")
