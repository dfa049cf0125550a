"""When a finished Execution is deleted (``ttlSecondsAfterFinished``): pure decisions as tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_operator.ttl import (
    MAX_TTL_SECONDS,
    NAMESPACE_ANNOTATION,
    deletion_due,
    effective_ttl,
    finished_at,
    namespace_ttl,
    seconds_until,
)

DONE = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


@pytest.mark.parametrize(("own", "default", "namespace", "ttl"), [
    (None, None, None, None),   # kept
    (30, None, None, 30),
    (None, 60, None, 60),       # the Workflow's executionDefaults
    (None, None, 90, 90),       # the Namespace's annotation
    (30, 60, None, 30),         # the Execution's own value wins ...
    (30, 60, 90, 30),
    (30, None, 90, 30),         # ... over the Namespace's too
    (None, 60, 90, 60),         # the Workflow's wins over the Namespace's
    (0, 60, 90, 0),             # 0 is a value (delete at once), not "unset"
    (None, 0, 90, 0),
    (None, None, 0, 0),
])
def test_effective_ttl(own: int | None, default: int | None, namespace: int | None,
                       ttl: int | None) -> None:
    assert effective_ttl(own, default, namespace) == ttl


def test_effective_ttl_without_a_namespace_default() -> None:
    assert effective_ttl(None, 60) == 60
    assert effective_ttl(None, None) is None


@pytest.mark.parametrize(("annotations", "ttl", "bad"), [
    (None, None, False),                                    # no annotations at all
    ({}, None, False),
    ({"other": "5"}, None, False),
    ({NAMESPACE_ANNOTATION: "3600"}, 3600, False),
    ({NAMESPACE_ANNOTATION: "0"}, 0, False),               # delete at once
    ({NAMESPACE_ANNOTATION: " 60 "}, 60, False),           # blanks around are allowed
    ({NAMESPACE_ANNOTATION: str(MAX_TTL_SECONDS)}, MAX_TTL_SECONDS, False),
    ({NAMESPACE_ANNOTATION: str(MAX_TTL_SECONDS + 1)}, None, True),  # beyond int32
    ({NAMESPACE_ANNOTATION: "1h"}, None, True),            # a unit: not accepted
    ({NAMESPACE_ANNOTATION: "-5"}, None, True),
    ({NAMESPACE_ANNOTATION: "+5"}, None, True),
    ({NAMESPACE_ANNOTATION: "1.5"}, None, True),
    ({NAMESPACE_ANNOTATION: ""}, None, True),
    ({NAMESPACE_ANNOTATION: "\u00b2"}, None, True),        # a digit, but not a decimal one
])
def test_namespace_ttl(annotations: dict | None, ttl: int | None, bad: bool) -> None:
    value, problem = namespace_ttl(annotations)
    assert value == ttl
    if bad:
        assert problem is not None
        assert NAMESPACE_ANNOTATION in problem and repr(annotations[NAMESPACE_ANNOTATION]) \
            in problem and "3600" in problem
    else:
        assert problem is None


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
