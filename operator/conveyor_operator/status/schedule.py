"""The status of a Schedule (pure): what was decided, what runs, what came of it, ``Ready``.

``Ready`` follows kstatus: ``True`` with reason ``Scheduled`` (or ``Suspended``, which is a
settled state too) while the Schedule works; ``False`` with ``InvalidSchedule``,
``InvalidTimeZone`` or ``InvalidSpec`` plus ``Stalled`` when only an edit can help; ``False``
with ``WorkflowNotFound`` plus ``Reconciling`` while its Workflow is missing (ticks are
skipped until it exists).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..reasons import ConditionReason, ConditionType, EventReason, EventType
from .conditions import Condition, merge_conditions, not_ready, rfc3339
from .events import PhaseEvent

if TYPE_CHECKING:
    from ..schedules.runs import Run

#: Open runs listed in ``status.active`` (the CRD's ``maxItems``).
MAX_ACTIVE = 20
#: Problems that only an edit of the Schedule fixes.
STALLING = frozenset({ConditionReason.INVALID_SCHEDULE, ConditionReason.INVALID_TIME_ZONE,
                      ConditionReason.INVALID_SPEC})


@dataclass(frozen=True, slots=True)
class ScheduleFacts:
    """What the status of one Schedule shows.

    ``problem``: a condition reason and message when the Schedule cannot work as it is
    (None: it works). ``last_schedule``: scheduled time of the latest run created;
    ``last_tick``: the latest scheduled time decided; ``next_tick``: the next scheduled time
    (None when suspended, invalid or never again). ``runs``: the Executions it created.
    """

    generation: int | None
    suspended: bool
    problem: tuple[str, str] | None = None
    last_schedule: datetime | None = None
    last_tick: datetime | None = None
    next_tick: datetime | None = None
    runs: Sequence[Run] = ()
    describe: str = ""


def schedule_conditions(facts: ScheduleFacts) -> list[Condition]:
    """``Ready`` (and ``Stalled`` or ``Reconciling`` when it is False) for ``facts``."""
    if facts.problem is not None:
        reason, message = facts.problem
        return not_ready(reason, message, stalled=reason in STALLING)
    if facts.suspended:
        return [Condition(ConditionType.READY, True, ConditionReason.SUSPENDED,
                          "suspended: no runs are created until spec.suspend is false")]
    nxt = f"; next run {rfc3339(facts.next_tick)}" if facts.next_tick else ""
    return [Condition(ConditionType.READY, True, ConditionReason.SCHEDULED,
                      f"{facts.describe}{nxt}")]


def _outcome(runs: Sequence[Run]) -> dict[str, Any] | None:
    finished = [r for r in runs if not r.open]
    if not finished:
        return None
    last = max(finished, key=lambda r: (r.finished_at or "", r.scheduled or datetime.min))
    item: dict[str, Any] = {"name": last.name, "phase": last.phase}
    if last.scheduled:
        item["scheduledTime"] = rfc3339(last.scheduled)
    if last.finished_at:
        item["finishedAt"] = last.finished_at
    return item


def schedule_status(facts: ScheduleFacts, *, previous: dict[str, Any] | None,
                    now: datetime) -> dict[str, Any]:
    """The Schedule status document. Times are RFC 3339 (UTC). ``lastSuccessfulTime`` and
    ``lastOutcome`` come from the runs still present, else stay as ``previous`` had them
    (runs deleted by the history limits or a TTL do not erase what they told)."""
    previous = previous or {}
    runs = list(facts.runs)
    open_runs = [r for r in runs if r.open]
    active = [{"name": r.name, **({"scheduledTime": rfc3339(r.scheduled)} if r.scheduled
                                  else {})}
              for r in open_runs[-MAX_ACTIVE:]]
    succeeded = [r.finished_at for r in runs if r.phase == "Succeeded" and r.finished_at]
    last_success = max(succeeded, default=None)
    if previous.get("lastSuccessfulTime") and (last_success is None
                                               or previous["lastSuccessfulTime"] > last_success):
        last_success = previous["lastSuccessfulTime"]
    outcome = _outcome(runs)
    kept = previous.get("lastOutcome")
    if kept and (outcome is None or (kept.get("finishedAt") or "") > (
            outcome.get("finishedAt") or "")):
        outcome = kept
    return {
        "observedGeneration": facts.generation,
        "lastScheduleTime": rfc3339(facts.last_schedule) if facts.last_schedule else None,
        "lastTickTime": rfc3339(facts.last_tick) if facts.last_tick else None,
        "nextScheduleTime": rfc3339(facts.next_tick) if facts.next_tick else None,
        "lastSuccessfulTime": last_success,
        "lastOutcome": outcome,
        "active": active or None,
        "conditions": merge_conditions(previous.get("conditions"), schedule_conditions(facts),
                                       generation=facts.generation, now=now),
    }


#: Event reasons about a Schedule's ticks that are Warnings; the others are Normal.
WARNING_EVENTS = frozenset({EventReason.MISSED_DEADLINE, EventReason.TOO_MANY_MISSED_RUNS,
                            EventReason.WORKFLOW_NOT_FOUND, EventReason.INVALID_INPUTS,
                            EventReason.CATCH_UP_LIMIT})


def tick_event(reason: EventReason, message: str) -> PhaseEvent:
    """The Event about one decided tick (``reason`` from :class:`EventReason`)."""
    kind = EventType.WARNING if reason in WARNING_EVENTS else EventType.NORMAL
    return PhaseEvent(str(kind), str(reason), message)
