"""When a finished Execution is deleted (``ttlSecondsAfterFinished``): pure decisions as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_operator.ttl import deletion_due, effective_ttl, finished_at, seconds_until

DONE = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(("own", "default", "ttl"), [
    (None, None, None),   # kept
    (30, None, 30),
    (None, 60, 60),       # the Workflow's executionDefaults
    (30, 60, 30),         # the Execution's own value wins
    (0, 60, 0),           # 0 is a value (delete at once), not "unset"
])
def test_effective_ttl(own: int | None, default: int | None, ttl: int | None) -> None:
    assert effective_ttl(own, default) == ttl


@pytest.mark.parametrize(("phase", "finished", "ttl", "due"), [
    ("Succeeded", DONE, 10, DONE + timedelta(seconds=10)),
    ("Failed", DONE, 0, DONE),
    ("Cancelled", DONE, 3600, DONE + timedelta(hours=1)),
    ("Succeeded", DONE, None, None),     # no TTL: kept
    ("Running", DONE, 10, None),         # not finished
    ("Pending", None, 10, None),
    ("Succeeded", None, 10, None),       # no finish time written yet
    (None, DONE, 10, None),              # no phase yet
])
def test_deletion_due(phase: str | None, finished: datetime | None, ttl: int | None,
                      due: datetime | None) -> None:
    assert deletion_due(phase, finished, ttl) == due


@pytest.mark.parametrize(("now", "seconds"), [
    (DONE - timedelta(seconds=5), 5.0),
    (DONE, 0.0),
    (DONE + timedelta(seconds=5), 0.0),   # overdue: at once
])
def test_seconds_until(now: datetime, seconds: float) -> None:
    assert seconds_until(DONE, now) == seconds


@pytest.mark.parametrize(("status", "parsed"), [
    ({"finishedAt": "2026-12-02T03:00:00Z"}, DONE),
    ({"finishedAt": "2026-12-02T03:00:00.250000Z"}, DONE + timedelta(milliseconds=250)),
    ({}, None),
    ({"finishedAt": "yesterday"}, None),
    ({"finishedAt": 7}, None),
])
def test_finished_at(status: dict, parsed: datetime | None) -> None:
    assert finished_at(status) == parsed
