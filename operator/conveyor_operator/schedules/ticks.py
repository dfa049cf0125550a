"""Which ticks of a Schedule to run now (pure): missed runs, the starting deadline, jitter and
the concurrency policy, as functions of the schedule, what was decided before and ``now``.

The rules follow Kubernetes CronJob where it has them (kubernetes.io/docs/concepts/workloads/
controllers/cron-jobs: ``startingDeadlineSeconds``, ``concurrencyPolicy``, the "too many
missed start times" limit of 100, suspended ticks counting as missed) and add
``missedRunPolicy`` for what CronJob leaves fixed (it always runs the most recent missed
tick, which is ``RunOnce`` here):

* Ticks are decided in order, each once: ``status.lastTickTime`` (falling back to
  ``lastScheduleTime``, then to the Schedule's creation) is the baseline; every tick after it
  whose due time (scheduled time + jitter) has come is decided now.
* A tick older than ``startingDeadlineSeconds`` (from its due time) is dropped.
* Of the rest, the latest is *on time* when ``now`` is at most :data:`ON_TIME_SECONDS` past
  its due time; every other one was *missed* (the operator was down, or the Schedule was
  suspended). ``Skip`` runs none of the missed, ``RunOnce`` runs the latest due tick (missed
  or not), ``CatchUp`` runs the missed ones too, at most ``maxCatchUp`` (the most recent).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from ..reasons import EventReason
from .cron import CronSchedule

#: How late (seconds after its due time) a tick may be decided and still count as on time
#: rather than missed: timers, API calls and a quick operator restart fit well within it.
ON_TIME_SECONDS = 10
#: Most ticks decided at once (CronJob's limit of missed start times); beyond it only the
#: latest ones are looked at and one ``TooManyMissedRuns`` Event says how the rest went.
MAX_DUE_TICKS = 100


class MissedRunPolicy(StrEnum):
    """``spec.missedRunPolicy``: what happens to ticks that fell due while nothing ran them."""

    SKIP = "Skip"
    RUN_ONCE = "RunOnce"
    CATCH_UP = "CatchUp"


class ConcurrencyPolicy(StrEnum):
    """``spec.concurrencyPolicy``, as CronJob's: what a tick does while a run it created
    earlier is still open."""

    ALLOW = "Allow"
    FORBID = "Forbid"
    REPLACE = "Replace"


@dataclass(frozen=True, slots=True)
class Tick:
    """One scheduled time (UTC) and when it falls due (scheduled time + its jitter)."""

    scheduled: datetime
    due: datetime


@dataclass(frozen=True, slots=True)
class Skipped:
    """A tick decided without a run: the Event ``reason`` and a message saying why."""

    tick: Tick
    reason: EventReason
    message: str


@dataclass(frozen=True)
class TickPlan:
    """What to do now. ``create``: ticks to run, oldest first; ``skipped``: ticks decided
    without a run, oldest first (each gets an Event); ``truncated``: more than
    :data:`MAX_DUE_TICKS` ticks were due, and only the latest ones were looked at (the older
    ones are decided without a run and without an Event each); ``decided_through``: the
    latest scheduled time decided (the next baseline), None when nothing was due; ``next``:
    the first tick not due yet (None: the expression never matches again)."""

    create: tuple[Tick, ...] = ()
    skipped: tuple[Skipped, ...] = ()
    truncated: bool = False
    decided_through: datetime | None = None
    next: Tick | None = None


def is_late(tick: Tick, now: datetime) -> bool:
    """True when ``tick`` is decided more than :data:`ON_TIME_SECONDS` after it fell due
    (a missed tick that runs now says so in its Event)."""
    return (now - tick.due).total_seconds() > ON_TIME_SECONDS


def jitter_offset(seed: str, scheduled: datetime, jitter: timedelta) -> timedelta:
    """The delay of the tick at ``scheduled``: a value in ``[0, jitter)`` in whole
    milliseconds, the same for the same ``seed`` (the Schedule's uid) and tick in every
    process and after every restart (sha256, not a random generator)."""
    span = int(jitter.total_seconds() * 1000)
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{seed}/{int(scheduled.timestamp())}".encode()).digest()
    return timedelta(milliseconds=int.from_bytes(digest[:8], "big") % span)


def _tick(scheduled: datetime, seed: str, jitter: timedelta) -> Tick:
    return Tick(scheduled, scheduled + jitter_offset(seed, scheduled, jitter))


def plan_ticks(cron: CronSchedule, *, baseline: datetime, now: datetime,
               policy: MissedRunPolicy, max_catch_up: int, deadline_seconds: int | None,
               jitter: timedelta = timedelta(0), seed: str = "") -> TickPlan:
    """The ticks after ``baseline`` (exclusive) that are due at ``now``, decided under the
    rules of this module; see :class:`TickPlan` for the result. All datetimes are aware."""
    scheduled = cron.ticks(baseline, now, limit=MAX_DUE_TICKS + 1)
    truncated = len(scheduled) > MAX_DUE_TICKS
    if truncated:
        # Too many to list: the latest ones are enough to decide.
        scheduled = cron.latest_ticks(baseline, now, max(max_catch_up, 1) + 1)
    due: list[Tick] = []
    upcoming: Tick | None = None
    for moment in scheduled:
        tick = _tick(moment, seed, jitter)
        if tick.due > now:
            upcoming = tick  # jitter not over yet: it and everything after it waits
            break
        due.append(tick)
    if upcoming is None:  # every tick up to now is due: the next one is after now
        following = cron.next_after(due[-1].scheduled if due else baseline)
        upcoming = _tick(following, seed, jitter) if following is not None else None
    if not due:
        return TickPlan(next=upcoming)
    skipped: list[Skipped] = []
    live = due
    if deadline_seconds is not None:
        limit = now - timedelta(seconds=deadline_seconds)
        live = [t for t in due if t.due >= limit]
        skipped += [Skipped(t, EventReason.MISSED_DEADLINE,
                            f"not started: due {_ago(t, now)} ago, more than "
                            f"startingDeadlineSeconds ({deadline_seconds})")
                    for t in due if t.due < limit]
    create: list[Tick] = []
    if live:
        latest = live[-1]
        on_time = not is_late(latest, now)
        missed = live if not on_time else live[:-1]
        if policy == MissedRunPolicy.SKIP:
            create = [latest] if on_time else []
            skipped += [Skipped(t, EventReason.MISSED_RUN_SKIPPED,
                                f"missed (due {_ago(t, now)} ago); missedRunPolicy Skip")
                        for t in missed]
        elif policy == MissedRunPolicy.RUN_ONCE:
            create = [latest]
            skipped += [Skipped(t, EventReason.MISSED_RUN_SKIPPED,
                                f"missed (due {_ago(t, now)} ago); missedRunPolicy RunOnce "
                                f"runs only the latest, {_rfc3339(latest.scheduled)}")
                        for t in live[:-1]]
        else:
            cap = max(max_catch_up, 0)
            caught = missed[len(missed) - cap:] if cap else []
            create = caught + ([latest] if on_time else [])
            skipped += [Skipped(t, EventReason.CATCH_UP_LIMIT,
                                f"missed (due {_ago(t, now)} ago); missedRunPolicy CatchUp "
                                f"runs only the latest {cap} (maxCatchUp)")
                        for t in missed[:len(missed) - len(caught)]]
    skipped.sort(key=lambda s: s.tick.scheduled)
    return TickPlan(create=tuple(create), skipped=tuple(skipped), truncated=truncated,
                    decided_through=due[-1].scheduled, next=upcoming)


@dataclass(frozen=True, slots=True)
class ConcurrencyDecision:
    """What a tick does about the open runs: ``create`` it or not, and which open runs
    (names) to cancel first (``Replace``)."""

    create: bool
    cancel: tuple[str, ...] = ()


def concurrency_decision(policy: ConcurrencyPolicy, open_runs: list[str]) -> ConcurrencyDecision:
    """CronJob's ``concurrencyPolicy`` over the names of the open runs this Schedule created:
    ``Allow`` creates; ``Forbid`` creates only when none is open; ``Replace`` cancels the
    open ones and creates."""
    if not open_runs or policy == ConcurrencyPolicy.ALLOW:
        return ConcurrencyDecision(True)
    if policy == ConcurrencyPolicy.FORBID:
        return ConcurrencyDecision(False)
    return ConcurrencyDecision(True, tuple(sorted(open_runs)))


def _rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ago(tick: Tick, now: datetime) -> str:
    seconds = int((now - tick.due).total_seconds())
    return f"{seconds}s"
