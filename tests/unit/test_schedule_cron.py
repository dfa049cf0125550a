"""The next-tick function of Schedules as tables: plain schedules, macros, zones, and the
daylight-saving nights of America/New_York in 2025 (spring forward on 2025-03-09 at 02:00 EST
to 03:00 EDT = 07:00Z; fall back on 2025-11-02 at 02:00 EDT to 01:00 EST = 06:00Z)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from conveyor_operator.schedules.cron import ScheduleError, parse_schedule

NY = "America/New_York"


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def series(schedule: str, zone: str | None, start: str, count: int) -> list[str]:
    cron = parse_schedule(schedule, zone)
    found, current = [], utc(start)
    for _ in range(count):
        current = cron.next_after(current)
        found.append(current.strftime("%Y-%m-%dT%H:%M"))
    return found


@pytest.mark.parametrize(("schedule", "zone", "start", "expected"), [
    pytest.param("*/15 * * * *", None, "2026-01-01T10:07", ["2026-01-01T10:15",
                                                             "2026-01-01T10:30"], id="utc"),
    pytest.param("0 12 * * *", None, "2026-01-01T12:00", ["2026-01-02T12:00",
                                                           "2026-01-03T12:00"],
                 id="strictly-after"),
    pytest.param("@hourly", None, "2026-01-01T10:00:01", ["2026-01-01T11:00",
                                                          "2026-01-01T12:00"], id="hourly"),
    pytest.param("@daily", "Europe/Berlin", "2026-01-01T00:00", ["2026-01-01T23:00",
                                                                 "2026-01-02T23:00"],
                 id="daily-in-berlin"),
    pytest.param("@weekly", None, "2026-01-01T00:00", ["2026-01-04T00:00",
                                                       "2026-01-11T00:00"], id="weekly"),
    pytest.param("@monthly", None, "2026-01-15T00:00", ["2026-02-01T00:00",
                                                        "2026-03-01T00:00"], id="monthly"),
    pytest.param("@yearly", None, "2026-01-15T00:00", ["2027-01-01T00:00"], id="yearly"),
    pytest.param("0 9 * * MON-FRI", None, "2026-01-02T10:00", ["2026-01-05T09:00",
                                                                "2026-01-06T09:00"],
                 id="names"),
    pytest.param("0 0 L * *", None, "2026-02-01T00:00", ["2026-02-28T00:00"],
                 id="last-day"),
    # Spring forward: 02:00 does not exist on 2025-03-09; it runs once at 03:00 EDT.
    pytest.param("0 2 * * *", NY, "2025-03-08T12:00", ["2025-03-09T07:00", "2025-03-10T06:00",
                                                       "2025-03-11T06:00"],
                 id="dst-spring-missing-time-runs-at-the-gap-end"),
    pytest.param("30 2 * * *", NY, "2025-03-08T12:00", ["2025-03-09T07:00",
                                                        "2025-03-10T06:30"],
                 id="dst-spring-half-past"),
    pytest.param("*/30 2 * * *", NY, "2025-03-08T12:00", ["2025-03-09T07:00",
                                                          "2025-03-10T06:00",
                                                          "2025-03-10T06:30"],
                 id="dst-spring-two-missing-times-run-once"),
    pytest.param("0 3 * * *", NY, "2025-03-08T12:00", ["2025-03-09T07:00",
                                                       "2025-03-10T07:00"],
                 id="dst-spring-03-00-exists"),
    pytest.param("0 * * * *", NY, "2025-03-09T05:30", ["2025-03-09T06:00", "2025-03-09T07:00",
                                                       "2025-03-09T08:00"],
                 id="dst-spring-hourly"),
    # Fall back: 01:30 occurs twice on 2025-11-02; it runs once, at 01:30 EDT.
    pytest.param("30 1 * * *", NY, "2025-11-01T12:00", ["2025-11-02T05:30",
                                                        "2025-11-03T06:30"],
                 id="dst-fall-repeated-time-runs-once"),
    pytest.param("30 1 * * *", NY, "2025-11-02T06:10", ["2025-11-03T06:30"],
                 id="dst-fall-from-the-second-pass"),
    pytest.param("*/15 1 * * *", NY, "2025-11-02T04:30", ["2025-11-02T05:00",
                                                          "2025-11-02T05:15",
                                                          "2025-11-02T05:30",
                                                          "2025-11-02T05:45",
                                                          "2025-11-03T06:00"],
                 id="dst-fall-fixed-hour-first-pass-only"),
    pytest.param("0 * * * *", NY, "2025-11-02T04:30", ["2025-11-02T05:00", "2025-11-02T06:00",
                                                       "2025-11-02T07:00"],
                 id="dst-fall-every-hour-keeps-real-time"),
    pytest.param("0 2 * * *", NY, "2025-11-01T12:00", ["2025-11-02T07:00",
                                                       "2025-11-03T07:00"],
                 id="dst-fall-02-00-once"),
    # Lord Howe Island moves its clocks by 30 minutes: 02:00 -> 02:30 on 2025-10-05.
    pytest.param("15 2 * * *", "Australia/Lord_Howe", "2025-10-04T00:00",
                 ["2025-10-04T15:30", "2025-10-05T15:15"], id="dst-half-hour-zone"),
])
def test_next_ticks(schedule: str, zone: str | None, start: str, expected: list[str]) -> None:
    assert series(schedule, zone, start, len(expected)) == expected


@pytest.mark.parametrize("night", ["2025-03-09T03:00", "2025-11-02T03:00"],
                         ids=["spring-forward", "fall-back"])
def test_every_minute_across_a_dst_night_keeps_real_time(night: str) -> None:
    """``* * * * *`` never leaves more than 60 s without a tick and never ticks twice for
    one instant, whatever the local clock does (a whole night, 01:00 to 04:00 local)."""
    cron = parse_schedule("* * * * *", NY)
    start = utc(night)
    ticks = cron.ticks(start, start + timedelta(hours=5), limit=10_000)
    assert len(ticks) == 300
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(ticks)}
    assert gaps == {60.0}
    assert len(set(ticks)) == len(ticks)


@pytest.mark.parametrize(("schedule", "night", "count"), [
    ("0 2 * * *", "2025-03-09T00:00", 1),
    ("30 2 * * *", "2025-03-09T00:00", 1),
    ("30 1 * * *", "2025-11-02T00:00", 1),
    ("0 1 * * *", "2025-11-02T00:00", 1),
    ("0 * * * *", "2025-11-02T00:00", 25),  # the day has 25 hours
    ("0 * * * *", "2025-03-09T00:00", 23),  # and this one 23
])
def test_runs_per_local_day(schedule: str, night: str, count: int) -> None:
    """How often a schedule runs between two local midnights of a DST day."""
    cron = parse_schedule(schedule, NY)
    day = datetime.fromisoformat(night).replace(tzinfo=cron.zone)
    end = (day + timedelta(days=1)).replace(tzinfo=cron.zone)
    assert len(cron.ticks(day - timedelta(seconds=1), end - timedelta(seconds=1),
                          limit=1000)) == count


def test_latest_ticks_finds_the_end_of_a_long_gap_without_walking_it() -> None:
    cron = parse_schedule("* * * * *", None)
    latest = cron.latest_ticks(utc("2025-01-01T00:00"), utc("2025-02-01T00:00:30"), 3)
    assert [t.strftime("%d %H:%M") for t in latest] == ["31 23:58", "31 23:59", "01 00:00"]
    assert cron.latest_ticks(utc("2025-01-31T23:58:30"), utc("2025-02-01T00:00:30"), 5) == [
        utc("2025-01-31T23:59"), utc("2025-02-01T00:00")]


@pytest.mark.parametrize(("schedule", "zone", "field", "words"), [
    ("61 * * * *", None, "schedule", "Bad minute"),
    ("* * * *", None, "schedule", "has 4 field(s); expected 5"),
    ("* * * * * *", None, "schedule", "has 6 field(s)"),
    ("@reboot", None, "schedule", "unknown macro '@reboot'"),
    ("TZ=Europe/Berlin 0 * * * *", None, "schedule", "set spec.timeZone instead"),
    ("CRON_TZ=UTC 0 * * * *", None, "schedule", "set spec.timeZone instead"),
    ("0 0 30 2 *", None, "schedule", "Bad day-of-month"),
    ("* * * * *", "Mars/Olympus_Mons", "timeZone", "unknown time zone 'Mars/Olympus_Mons'"),
    ("* * * * *", "../etc/passwd", "timeZone", "unknown time zone"),
])
def test_bad_schedules_name_the_field(schedule: str, zone: str | None, field: str,
                                      words: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        parse_schedule(schedule, zone)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"spec.{field}: ") and words in str(caught.value)


def test_the_default_zone_is_utc_and_macros_expand() -> None:
    cron = parse_schedule("@daily")
    assert (cron.expression, cron.zone_name, cron.every_hour) == ("0 0 * * *", "UTC", False)
    assert parse_schedule("*/5 * * * *").every_hour
