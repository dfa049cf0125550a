"""End to end, slow: a Schedule ``* * * * *`` with ``concurrencyPolicy: Forbid`` and
``startingDeadlineSeconds: 60`` whose runs last 90 s, while the operator is killed (SIGKILL)
at second :02 of a minute and started again, ten times: exactly one Execution per
scheduled time it created, and never two running at once (checked on the engine's own
start and finish times). The operator's clock runs four times as fast as real time
(``CONVEYOR_CLOCK_FILE``), so ten minutes of schedule take about three."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.api import Engine
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.fakeclock import FakeClock
from tests.e2e.sandbox.schedule_helpers import (
    delete_schedule,
    events,
    runs,
    schedule,
    status,
    utc,
    workflow,
)
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
SPEED = 4.0
RESTARTS = 10


@pytest.mark.timeout(900)
async def test_ten_restarts_at_second_two_never_double_a_run(
        clock_sandbox: tuple[Sandbox, FakeClock]) -> None:
    sandbox, clock = clock_sandbox
    t0 = utc("2025-07-01T00:00:00")
    clock.set(t0 - timedelta(seconds=10), speed=0)
    lasting = f"{90 / SPEED}s"  # 90 s of schedule time
    await sandbox.apply_objects([
        workflow("restart-slow", [{"name": "nap", "type": "wait",
                                   "params": {"duration": lasting}}]),
        schedule("restarts", "restart-slow", "* * * * *", concurrencyPolicy="Forbid",
                 startingDeadlineSeconds=60, successfulRunsHistoryLimit=100),
    ])
    try:
        await eventually(lambda: status(sandbox, "restarts"),
                         until=lambda s: s.get("nextScheduleTime") == "2025-07-01T00:00:00Z",
                         what="the Schedule's first status")
        clock.set(t0 - timedelta(seconds=10), speed=SPEED)
        for minute in range(RESTARTS):
            await clock.until(t0 + timedelta(minutes=minute, seconds=2))
            await sandbox.stop_operator(kill=True)
            await sandbox.start_operator()
        end = t0 + timedelta(minutes=RESTARTS + 2)
        await clock.until(end)
        clock.set(end, speed=0)
        await eventually(lambda: status(sandbox, "restarts"),
                         until=lambda s: s.get("lastTickTime") == "2025-07-01T00:12:00Z",
                         what="the last tick to be decided")
        names = [r["metadata"]["name"] for r in await runs(sandbox, "restarts")]
        await sandbox.wait_finished([("default", n) for n in names], timeout=120)
        found = await runs(sandbox, "restarts")
        reasons = [reason for reason, _ in await events(sandbox, "restarts")]
    finally:
        clock.set(clock.now(), speed=0)
        await delete_schedule(sandbox, "restarts")
    times = [datetime.fromisoformat(r["metadata"]["annotations"][
        "conveyor.dev/scheduled-time"].replace("Z", "+00:00")) for r in found]
    assert len(times) == len(set(times)), "two Executions for one scheduled time"
    for run, moment in zip(found, times, strict=True):
        assert run["metadata"]["name"] == f"restarts-{int(moment.timestamp()) // 60}"
    # Runs last 90 s and ticks come every 60 s: Forbid skips every other tick.
    assert len(times) >= RESTARTS // 2
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert all(gap >= 120 for gap in gaps), gaps
    # Never two running: the engine's own start and finish times do not overlap.
    engine = await Engine.connect(redis_url=sandbox.redis_url,
                                  database_url=sandbox.database_url,
                                  key_prefix=sandbox.key_prefix)
    try:
        spans = []
        for run in found:
            state = await engine.get(run["status"]["executionId"])
            assert state.phase == "Succeeded", (run["metadata"]["name"], state.phase)
            spans.append((state.started_at, state.finished_at))
    finally:
        await engine.close()
    spans.sort(key=lambda span: span[0] or datetime.min.replace(tzinfo=UTC))
    for (_, finished), (started, _) in itertools.pairwise(spans):
        assert finished is not None and started is not None and started >= finished, spans
    assert "PreviousRunActive" in reasons
