"""Which ticks a Schedule runs (pure): missed-run policies, the starting deadline, jitter,
too many missed ticks, and the concurrency policy, as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_operator.reasons import EventReason
from conveyor_operator.schedules.cron import parse_schedule
from conveyor_operator.schedules.ticks import (
    MAX_DUE_TICKS,
    ConcurrencyDecision,
    ConcurrencyPolicy,
    MissedRunPolicy,
    concurrency_decision,
    jitter_offset,
    plan_ticks,
)

EVERY_MINUTE = parse_schedule("* * * * *")
T0 = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def hhmm(items: object) -> list[str]:
    """``HH:MM`` of each Tick or Skipped tick."""
    return [getattr(i, "tick", i).scheduled.strftime("%H:%M") for i in items]  # type: ignore


def plan(now: datetime, policy: str = "RunOnce", *, baseline: datetime = T0,
         max_catch_up: int = 10, deadline: int | None = None, jitter: float = 0) -> object:
    return plan_ticks(EVERY_MINUTE, baseline=baseline, now=now, policy=MissedRunPolicy(policy),
                      max_catch_up=max_catch_up, deadline_seconds=deadline,
                      jitter=timedelta(seconds=jitter), seed="uid-1")


# The operator decided 00:00 and went down at 00:00:20; it is back 5.5 minutes later, at
# 00:05:50: the ticks 00:01 ... 00:05 fell due meanwhile (the last one 50 s ago).
BACK = at(5 + 50 / 60)


@pytest.mark.parametrize(("policy", "max_catch_up", "created", "skipped", "reason"), [
    ("Skip", 10, [], ["00:01", "00:02", "00:03", "00:04", "00:05"],
     EventReason.MISSED_RUN_SKIPPED),
    ("RunOnce", 10, ["00:05"], ["00:01", "00:02", "00:03", "00:04"],
     EventReason.MISSED_RUN_SKIPPED),
    ("CatchUp", 10, ["00:01", "00:02", "00:03", "00:04", "00:05"], [], None),
    ("CatchUp", 3, ["00:03", "00:04", "00:05"], ["00:01", "00:02"], EventReason.CATCH_UP_LIMIT),
])
def test_an_outage_of_five_and_a_half_minutes(policy: str, max_catch_up: int,
                                               created: list[str], skipped: list[str],
                                               reason: EventReason | None) -> None:
    result = plan(BACK, policy, max_catch_up=max_catch_up)
    assert hhmm(result.create) == created
    assert hhmm(result.skipped) == skipped
    assert {s.reason for s in result.skipped} == ({reason} if reason else set())
    assert result.decided_through == at(5)
    assert result.next.scheduled == at(6)


@pytest.mark.parametrize("policy", ["Skip", "RunOnce", "CatchUp"])
def test_a_tick_on_time_runs_under_every_policy(policy: str) -> None:
    result = plan(at(3) + timedelta(seconds=2), policy, baseline=at(2))
    assert hhmm(result.create) == ["00:03"] and result.skipped == ()


@pytest.mark.parametrize(("policy", "created", "skipped"), [
    ("Skip", ["00:05"], ["00:01", "00:02", "00:03", "00:04"]),
    ("RunOnce", ["00:05"], ["00:01", "00:02", "00:03", "00:04"]),
    ("CatchUp", ["00:01", "00:02", "00:03", "00:04", "00:05"], []),
])
def test_back_just_after_a_tick_runs_it_on_time(policy: str, created: list[str],
                                                skipped: list[str]) -> None:
    result = plan(at(5) + timedelta(seconds=5), policy)
    assert (hhmm(result.create), hhmm(result.skipped)) == (created, skipped)


def test_nothing_due_yet_only_says_when_next() -> None:
    result = plan(at(0.5), baseline=T0)
    assert result.create == () and result.skipped == () and result.decided_through is None
    assert result.next.scheduled == at(1)


@pytest.mark.parametrize(("deadline", "policy", "created", "dropped"), [
    (60, "CatchUp", ["00:05"], ["00:01", "00:02", "00:03", "00:04"]),
    (150, "CatchUp", ["00:04", "00:05"], ["00:01", "00:02", "00:03"]),
    (30, "RunOnce", [], ["00:01", "00:02", "00:03", "00:04", "00:05"]),
    (30, "Skip", [], ["00:01", "00:02", "00:03", "00:04", "00:05"]),
])
def test_starting_deadline_drops_ticks_older_than_it(deadline: int, policy: str,
                                                     created: list[str],
                                                     dropped: list[str]) -> None:
    result = plan(BACK, policy, deadline=deadline)
    assert hhmm(result.create) == created
    assert hhmm(s for s in result.skipped if s.reason == EventReason.MISSED_DEADLINE) == dropped


def test_more_than_a_hundred_due_ticks_are_cut_to_the_latest() -> None:
    result = plan(at(60 * 24), "CatchUp", max_catch_up=3)
    assert result.truncated
    # the three latest missed ones, and the one on time (never counted against maxCatchUp)
    assert hhmm(result.create) == ["23:57", "23:58", "23:59", "00:00"]
    assert result.decided_through == at(60 * 24)
    assert len(result.skipped) < MAX_DUE_TICKS


def test_jitter_is_the_same_for_a_tick_everywhere_and_below_the_bound() -> None:
    bound = timedelta(seconds=30)
    offsets = [jitter_offset("uid-1", at(m), bound) for m in range(200)]
    assert offsets == [jitter_offset("uid-1", at(m), bound) for m in range(200)]
    assert all(timedelta(0) <= o < bound for o in offsets)
    assert len(set(offsets)) > 150  # spread, not one value
    assert offsets != [jitter_offset("uid-2", at(m), bound) for m in range(200)]
    assert jitter_offset("uid-1", at(1), timedelta(0)) == timedelta(0)


def test_a_jittered_tick_waits_for_its_due_time() -> None:
    delay = jitter_offset("uid-1", at(1), timedelta(seconds=30))
    before = plan(at(1) + delay - timedelta(milliseconds=1), baseline=T0, jitter=30)
    assert before.create == () and before.next.due == at(1) + delay
    after = plan(at(1) + delay, baseline=T0, jitter=30)
    assert hhmm(after.create) == ["00:01"]
    assert after.create[0].due == at(1) + delay


@pytest.mark.parametrize(("policy", "open_runs", "expected"), [
    ("Allow", [], ConcurrencyDecision(True)),
    ("Allow", ["a"], ConcurrencyDecision(True)),
    ("Forbid", [], ConcurrencyDecision(True)),
    ("Forbid", ["a"], ConcurrencyDecision(False)),
    ("Replace", [], ConcurrencyDecision(True)),
    ("Replace", ["b", "a"], ConcurrencyDecision(True, ("a", "b"))),
])
def test_concurrency_policy(policy: str, open_runs: list[str],
                            expected: ConcurrencyDecision) -> None:
    assert concurrency_decision(ConcurrencyPolicy(policy), open_runs) == expected
