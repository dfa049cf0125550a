"""Cron arithmetic of Schedules (pure): parse ``spec.schedule`` and ``spec.timeZone``, and the
next tick after an instant, with the daylight-saving rules of ``docs/schedules.md``.

The field syntax is that of Kubernetes CronJob (five fields: minute, hour, day of month,
month, day of week; the macros ``@yearly`` ``@annually`` ``@monthly`` ``@weekly`` ``@daily``
``@midnight`` ``@hourly``; ``TZ=``/``CRON_TZ=`` prefixes refused, as CronJob refuses them:
``timeZone`` names the zone). Matching is done by ``cronsim`` (maintained, used by
Healthchecks.io; the Debian cron dialect, so ``L``, ``#`` and names such as ``MON`` work) on
naive local wall-clock times; turning a local time into an instant is done here, so the
daylight-saving rules are ours, stated once and tested as tables
(``tests/unit/test_schedule_cron.py``):

* A local time that does not exist that day (spring forward, ``02:30`` in New York on
  2025-03-09) runs once, at the first instant after the gap (``03:00`` EDT); several such
  times in one gap run once together, and not again if the schedule also matches that instant.
* A local time that occurs twice (fall back, ``01:30`` on 2025-11-02) runs once, at its first
  occurrence, unless the hour field starts with ``*`` (``* * * * *``, ``0 * * * *``,
  ``*/10 * * * *``): such a schedule keeps its rhythm in real time and runs in both passes of
  the repeated hour, each instant once. So ``* * * * *`` never leaves more than 60 s without
  a tick and never ticks twice for one instant.

Every instant returned is an aware ``datetime`` in UTC with whole minutes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

#: Macros, as Kubernetes CronJob accepts them (robfig/cron's ``@every`` is not among them).
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
#: Zone used when ``spec.timeZone`` is not set (a CronJob would use the controller's zone;
#: an operator's local zone is nothing a manifest should depend on).
DEFAULT_ZONE = "UTC"
#: The largest backward clock change any zone makes (DST is one hour; two in history):
#: a local time later by more than this is always a later instant.
_MARGIN = timedelta(hours=3)
#: Without a zone transition in sight, the first local match is the answer (fast path).
_STEADY_SPAN = timedelta(days=7)


class ScheduleError(ValueError):
    """A ``spec.schedule`` or ``spec.timeZone`` that cannot be used; ``field`` names which
    (``"schedule"`` or ``"timeZone"``) and the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"spec.{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class CronSchedule:
    """A parsed schedule in its zone. Build with :func:`parse_schedule`."""

    #: The five cron fields (a macro already expanded).
    expression: str
    #: The IANA zone name as given (``UTC`` by default).
    zone_name: str
    zone: tzinfo = field(repr=False, compare=False)
    #: The hour field starts with ``*``: the repeated hour of a fall-back runs twice.
    every_hour: bool = False

    def next_after(self, after: datetime) -> datetime | None:
        """The first tick strictly after the instant ``after`` (aware), in UTC; None when the
        expression matches nothing within cronsim's horizon (50 years)."""
        after = _as_utc(after)
        local = after.astimezone(self.zone).replace(tzinfo=None)
        quick = self._scan(after, local, margin=timedelta(0))
        if quick is not None and self._steady(after, quick):
            return quick
        return self._scan(after, local - _MARGIN, margin=_MARGIN)

    def ticks(self, after: datetime, until: datetime, limit: int) -> list[datetime]:
        """Ticks in ``(after, until]``, oldest first, at most ``limit`` of them."""
        found: list[datetime] = []
        current = _as_utc(after)
        while len(found) < limit:
            tick = self.next_after(current)
            if tick is None or tick > until:
                break
            found.append(tick)
            current = tick
        return found

    def latest_ticks(self, after: datetime, until: datetime, count: int) -> list[datetime]:
        """The last ``count`` ticks in ``(after, until]``, oldest first, without walking the
        whole interval (a schedule every minute missed for a month): a window ending at
        ``until`` grows fourfold until it holds ``count`` ticks or reaches ``after``."""
        after, until = _as_utc(after), _as_utc(until)
        window = timedelta(minutes=1)
        while True:
            start = max(after, until - window)
            found = self.ticks(start, until, limit=1_000_000)
            if len(found) >= count or start == after:
                return found[-count:] if count else []
            window *= 4

    # -- internals ---------------------------------------------------------------------------

    def _matches(self, start: datetime) -> Iterator[datetime]:
        try:
            yield from CronSim(self.expression, start)
        except CronSimError:  # pragma: no cover - parse_schedule checked the expression
            return

    def _instants(self, local: datetime) -> tuple[datetime, ...]:
        """The instants the naive local time ``local`` stands for under the DST rules."""
        first = local.replace(tzinfo=self.zone, fold=0).astimezone(UTC)
        second = local.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first == second:
            return (first,)
        low, high = sorted((first, second))
        if low.astimezone(self.zone).replace(tzinfo=None) == local:  # occurs twice
            return (low, high) if self.every_hour else (low,)
        return (self._gap_end(low, high),)  # does not exist: the first instant after the gap

    def _gap_end(self, low: datetime, high: datetime) -> datetime:
        """The instant the clock jumps forward, between ``low`` and ``high`` (the local
        time read with the offsets before and after): the first whose offset is the later."""
        target = high.astimezone(self.zone).utcoffset()
        lo, hi = int(low.timestamp()), int(high.timestamp())
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if datetime.fromtimestamp(mid, self.zone).utcoffset() == target:
                hi = mid
            else:
                lo = mid
        return datetime.fromtimestamp(hi, UTC)

    def _scan(self, after: datetime, start: datetime, margin: timedelta) -> datetime | None:
        """The earliest instant after ``after`` among local matches from ``start``, looking
        ``margin`` past the best local match (a fall-back can put a later local time at an
        earlier instant by up to the clock change)."""
        best: datetime | None = None
        best_local: datetime | None = None
        for local in self._matches(start):
            if best_local is not None and local > best_local + margin:
                break
            for instant in self._instants(local):
                if instant > after and (best is None or instant < best):
                    best, best_local = instant, local
        return best

    def _steady(self, after: datetime, found: datetime) -> bool:
        """No clock change near ``[after, found]``: the same offset on both sides, close
        together (no zone changes its clock twice within a week)."""
        if found - after > _STEADY_SPAN:
            return False
        before = (after - _MARGIN).astimezone(self.zone).utcoffset()
        return before == (found + _MARGIN).astimezone(self.zone).utcoffset()


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("an aware datetime is required")
    return moment.astimezone(UTC)


def parse_zone(name: str | None) -> tzinfo:
    """The IANA zone ``name`` (``UTC`` when None or empty); :class:`ScheduleError` on
    ``timeZone`` naming it when the zone database has no such zone."""
    name = name or DEFAULT_ZONE
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError("timeZone", f"unknown time zone {name!r}; use an IANA name "
                                        f"such as 'Europe/Berlin' or 'UTC'") from None


def parse_schedule(schedule: str, time_zone: str | None = None) -> CronSchedule:
    """``spec.schedule`` in ``spec.timeZone`` as a :class:`CronSchedule`.

    Raises :class:`ScheduleError` naming the field: a wrong number of fields, a value out of
    range (cronsim's words, e.g. ``Bad minute``), a ``TZ=`` prefix, an unknown macro, an
    expression that never matches (``0 0 30 2 *``), or an unknown zone.
    """
    text = " ".join(schedule.split())
    if text.upper().startswith(("TZ=", "CRON_TZ=")):
        raise ScheduleError("schedule", "TZ= and CRON_TZ= are not supported (as in a "
                                        "CronJob); set spec.timeZone instead")
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ScheduleError("schedule", f"unknown macro {text!r}; one of "
                                            f"{', '.join(sorted(MACROS))}")
        text = MACROS[text.lower()]
    fields = text.split()
    if len(fields) != 5:
        raise ScheduleError("schedule", f"{schedule!r} has {len(fields)} field(s); expected 5 "
                                        f"(minute hour day-of-month month day-of-week) or a "
                                        f"macro such as @daily")
    zone = parse_zone(time_zone)
    try:
        next(CronSim(text, datetime(2000, 1, 1)))
    except CronSimError as exc:
        raise ScheduleError("schedule", f"{schedule!r}: {exc}") from None
    except StopIteration:
        raise ScheduleError("schedule", f"{schedule!r} never matches a date") from None
    return CronSchedule(text, time_zone or DEFAULT_ZONE, zone, every_hour=fields[1].startswith("*"))
