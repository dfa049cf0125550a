"""The Execution status parts of sub-workflows and outputs, and the scheduled time read
from a Schedule's annotation (pure), as tables."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor_operator.schedules.runs import scheduled_time_of
from conveyor_operator.status.execution import bounded_outputs


@pytest.mark.parametrize(("outputs", "expected"), [
    (None, None),
    ({}, None),
    ({"n": 1, "s": "short"}, {"n": 1, "s": "short"}),
    ({"big": "x" * 600, "n": 2},
     {"big": "(truncated: 602 bytes of JSON, over 512; the engine keeps the whole value)",
      "n": 2}),
])
def test_bounded_outputs(outputs, expected) -> None:
    assert bounded_outputs(outputs) == expected


@pytest.mark.parametrize(("annotations", "expected"), [
    (None, None),
    ({}, None),
    ({"conveyor.dev/scheduled-time": "2025-03-01T06:30:00Z"},
     datetime(2025, 3, 1, 6, 30, tzinfo=UTC)),
    ({"conveyor.dev/scheduled-time": "yesterday"}, None),
    ({"conveyor.dev/scheduled-time": "2025-03-01T06:30:00"}, None),  # no zone: refused
])
def test_scheduled_time_of(annotations, expected) -> None:
    assert scheduled_time_of(annotations) == expected
