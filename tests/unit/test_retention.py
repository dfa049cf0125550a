"""What the retention job deletes and when it looks again: pure decisions as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.retention import RetentionPolicy, is_expired, next_look, retention_cutoff

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.mark.parametrize(("days", "cutoff"), [
    (0, None),                      # off: history kept forever
    (1, NOW - DAY),
    (30, NOW - 30 * DAY),
    (0.5, NOW - DAY / 2),
])
def test_retention_cutoff(days: float, cutoff: datetime | None) -> None:
    assert retention_cutoff(NOW, days) == cutoff


def test_negative_days_are_refused_naming_the_value() -> None:
    with pytest.raises(ValueError, match="-1"):
        retention_cutoff(NOW, -1)


CUTOFF = NOW - 7 * DAY


@pytest.mark.parametrize(("phase", "finished_at", "cutoff", "expired"), [
    ("Succeeded", CUTOFF - DAY, CUTOFF, True),
    ("Failed", CUTOFF - DAY, CUTOFF, True),
    ("Cancelled", CUTOFF - timedelta(seconds=1), CUTOFF, True),
    ("Succeeded", CUTOFF, CUTOFF, False),            # strictly before the cutoff
    ("Succeeded", CUTOFF + DAY, CUTOFF, False),      # too recent
    ("Running", None, CUTOFF, False),                # open runs are never expired
    ("Pending", None, CUTOFF, False),
    ("Running", CUTOFF - DAY, CUTOFF, False),        # even with a stray finished_at
    ("Succeeded", CUTOFF - DAY, None, False),        # retention off
])
def test_is_expired(phase: str, finished_at: datetime | None, cutoff: datetime | None,
                    expired: bool) -> None:
    assert is_expired(phase, finished_at, cutoff) is expired


POLICY = RetentionPolicy(days=7, interval_seconds=60, batch=500)


@pytest.mark.parametrize(("deleted", "after"), [
    (500, NOW),                      # a full batch: more may be left, look on the next pass
    (499, NOW + timedelta(seconds=60)),
    (0, NOW + timedelta(seconds=60)),
])
def test_next_look(deleted: int, after: datetime) -> None:
    assert next_look(NOW, POLICY, deleted) == after
