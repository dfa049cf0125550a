"""End to end: the real operator process runs Schedules on a controllable clock
(``CONVEYOR_CLOCK_FILE``): ticks create Executions with deterministic names, a DST night
runs each local time as docs/schedules.md says, an outage of five and a half minutes is
handled by each missedRunPolicy, and bad schedules are reported on status."""

from __future__ import annotations

from datetime import timedelta

import pytest

from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.fakeclock import FakeClock
from tests.e2e.sandbox.schedule_helpers import (
    API,
    api,
    delete_schedule,
    events,
    runs,
    schedule,
    scheduled,
    status,
    utc,
    workflow,
)
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e]
NY = "America/New_York"


def ready(found: dict) -> dict:
    return next((c for c in found.get("conditions", []) if c["type"] == "Ready"), {})


async def test_a_spring_forward_night_through_the_operator(
        clock_sandbox: tuple[Sandbox, FakeClock]) -> None:
    """2025-03-09 in New York: ``0 2 * * *`` runs once, at 03:00 EDT (07:00Z), with the
    scheduled time in its inputs; ``* * * * *`` runs every minute of real time across the
    jump. History limits keep the newest Succeeded runs only."""
    sandbox, clock = clock_sandbox
    clock.set(utc("2025-03-09T06:56:30"), speed=0)
    await sandbox.apply_objects([
        workflow("dst-note"),
        schedule("dst-two", "dst-note", "0 2 * * *", timeZone=NY,
                 inputs={"day": "${{ execution.scheduledTime }}"}),
        schedule("dst-every", "dst-note", "* * * * *", timeZone=NY,
                 successfulRunsHistoryLimit=100),
        schedule("dst-pruned", "dst-note", "* * * * *", timeZone=NY,
                 successfulRunsHistoryLimit=2),
    ])
    try:
        first = await eventually(lambda: status(sandbox, "dst-two"),
                                 until=lambda s: bool(s.get("nextScheduleTime")),
                                 what="dst-two's first status")
        assert first["nextScheduleTime"] == "2025-03-09T07:00:00Z"
        assert ready(first)["reason"] == "Scheduled"
        clock.set(utc("2025-03-09T06:56:30"), speed=30)
        await clock.until(utc("2025-03-09T07:04:10"))
        clock.set(utc("2025-03-09T07:04:10"), speed=0)
        await eventually(lambda: status(sandbox, "dst-every"),
                         until=lambda s: s.get("lastTickTime") == "2025-03-09T07:04:00Z",
                         what="dst-every to decide 07:04")
        every = await runs(sandbox, "dst-every")
        assert scheduled(every) == ["06:57", "06:58", "06:59", "07:00", "07:01", "07:02",
                                    "07:03", "07:04"]
        two = await runs(sandbox, "dst-two")
        assert scheduled(two) == ["07:00"]
        assert two[0]["spec"]["inputs"] == {"day": "2025-03-09T03:00:00-04:00"}
        assert two[0]["metadata"]["ownerReferences"][0]["kind"] == "Schedule"
        done = await sandbox.wait_finished([("default", two[0]["metadata"]["name"])], 60)
        assert done[0]["status"]["phase"] == "Succeeded"
        two_status = await eventually(lambda: status(sandbox, "dst-two"),
                                      until=lambda s: "lastOutcome" in s,
                                      what="dst-two's lastOutcome")
        assert two_status["lastScheduleTime"] == "2025-03-09T07:00:00Z"
        assert two_status["nextScheduleTime"] == "2025-03-10T06:00:00Z"
        assert two_status["lastOutcome"]["phase"] == "Succeeded"
        assert "lastSuccessfulTime" in two_status
        pruned = await eventually(lambda: runs(sandbox, "dst-pruned"),
                                  until=lambda r: len(r) <= 2 and all(
                                      (x.get("status") or {}).get("phase") == "Succeeded"
                                      for x in r),
                                  timeout=60, what="dst-pruned's history to shrink to 2")
        assert scheduled(pruned) == ["07:03", "07:04"]
        reasons = [reason for reason, _ in await events(sandbox, "dst-two")]
        assert reasons == ["RunCreated"]
    finally:
        for name in ("dst-two", "dst-every", "dst-pruned"):
            await delete_schedule(sandbox, name)
    await eventually(lambda: runs(sandbox, "dst-every"), until=lambda r: r == [],
                     what="garbage collection of a deleted Schedule's runs")


async def test_a_fall_back_night_runs_a_repeated_time_once(
        clock_sandbox: tuple[Sandbox, FakeClock]) -> None:
    """2025-11-02 in New York: ``30 1 * * *`` runs once, at 01:30 EDT (05:30Z), and not at
    01:30 EST (06:30Z); ``0 * * * *`` runs at 01:00 EDT and at 01:00 EST."""
    sandbox, clock = clock_sandbox
    clock.set(utc("2025-11-02T04:50:00"), speed=0)
    await sandbox.apply_objects([
        workflow("fall-note"),
        schedule("fall-half", "fall-note", "30 1 * * *", timeZone=NY),
        schedule("fall-hourly", "fall-note", "0 * * * *", timeZone=NY),
    ])
    try:
        await eventually(lambda: status(sandbox, "fall-half"),
                         until=lambda s: s.get("nextScheduleTime") == "2025-11-02T05:30:00Z",
                         what="fall-half's first status")
        clock.set(utc("2025-11-02T04:50:00"), speed=240)
        await clock.until(utc("2025-11-02T06:40:00"))
        clock.set(utc("2025-11-02T06:40:00"), speed=0)
        await eventually(lambda: status(sandbox, "fall-hourly"),
                         until=lambda s: s.get("lastTickTime") == "2025-11-02T06:00:00Z",
                         what="fall-hourly to decide 06:00Z")
        assert scheduled(await runs(sandbox, "fall-half")) == ["05:30"]
        assert scheduled(await runs(sandbox, "fall-hourly")) == ["05:00", "06:00"]
        assert (await status(sandbox, "fall-half"))["nextScheduleTime"] == \
            "2025-11-03T06:30:00Z"
    finally:
        for name in ("fall-half", "fall-hourly"):
            await delete_schedule(sandbox, name)


@pytest.mark.parametrize(("policy", "extra", "created", "reasons"), [
    ("Skip", {}, ["00:00"], ["MissedRunSkipped"] * 5),
    ("RunOnce", {}, ["00:00", "00:05"], ["MissedRunSkipped"] * 4 + ["MissedRunCreated"]),
    ("CatchUp", {}, ["00:00", "00:01", "00:02", "00:03", "00:04", "00:05"],
     ["MissedRunCreated"] * 5),
    ("CatchUp", {"maxCatchUp": 3}, ["00:00", "00:03", "00:04", "00:05"],
     ["CatchUpLimit"] * 2 + ["MissedRunCreated"] * 3),
])
async def test_an_operator_down_five_and_a_half_minutes(
        clock_sandbox: tuple[Sandbox, FakeClock], policy: str, extra: dict,
        created: list[str], reasons: list[str]) -> None:
    """The operator runs the 00:00 tick, is down from 00:00:20 to 00:05:50, and comes back:
    the ticks 00:01 to 00:05 were missed. The clock is frozen while it is down, so the gap
    is exactly five and a half minutes."""
    sandbox, clock = clock_sandbox
    name = f"outage-{policy.lower()}-{extra.get('maxCatchUp', 0)}"
    t0 = utc("2025-06-01T00:00:00")
    clock.set(t0 - timedelta(seconds=5), speed=0)
    await sandbox.apply_objects([workflow("outage-note"),
                                 schedule(name, "outage-note", "* * * * *",
                                          missedRunPolicy=policy,
                                          successfulRunsHistoryLimit=20, **extra)])
    try:
        await eventually(lambda: status(sandbox, name),
                         until=lambda s: s.get("nextScheduleTime") == "2025-06-01T00:00:00Z",
                         what=f"{name}'s first status")
        clock.set(t0 + timedelta(seconds=2), speed=0)  # on time
        await eventually(lambda: runs(sandbox, name), until=lambda r: len(r) == 1,
                         what="the 00:00 run")
        clock.set(t0 + timedelta(seconds=20), speed=0)
        await sandbox.stop_operator()
        clock.set(t0 + timedelta(minutes=5, seconds=50), speed=0)
        await sandbox.start_operator()
        await eventually(lambda: status(sandbox, name),
                         until=lambda s: s.get("lastTickTime") == "2025-06-01T00:05:00Z",
                         timeout=60, what=f"{name} to decide the missed ticks")
        assert scheduled(await runs(sandbox, name)) == created
        seen = await eventually(lambda: events(sandbox, name),
                                until=lambda e: len(e) >= 1 + len(reasons),
                                what=f"{name}'s Events")
        # (Events carry whole seconds: compared as a multiset, not in order)
        assert sorted(reason for reason, _ in seen) == sorted(["RunCreated", *reasons])
    finally:
        await delete_schedule(sandbox, name)


@pytest.mark.parametrize(("spec", "reason", "words"), [
    ({"schedule": "61 * * * *"}, "InvalidSchedule", "spec.schedule: '61 * * * *': Bad minute"),
    ({"schedule": "@daily", "timeZone": "Mars/Olympus_Mons"}, "InvalidTimeZone",
     "unknown time zone 'Mars/Olympus_Mons'"),
    ({"schedule": "@daily", "workflowRef": {"name": "no-such-workflow"}}, "WorkflowNotFound",
     "workflow 'no-such-workflow' not found"),
])
async def test_problems_are_reported_on_status(clock_sandbox: tuple[Sandbox, FakeClock],
                                               spec: dict, reason: str, words: str) -> None:
    sandbox, _ = clock_sandbox
    name = f"bad-{reason.lower()}"
    body = schedule(name, "dst-note", "* * * * *")
    body["spec"].update(spec)
    await sandbox.apply_objects([workflow("dst-note"), body])
    try:
        found = await eventually(lambda: status(sandbox, name),
                                 until=lambda s: ready(s).get("reason") == reason,
                                 what=f"{name}'s Ready condition")
        assert ready(found)["status"] == "False" and words in ready(found)["message"]
        # The fix is picked up: the operator keeps running and the Schedule turns Ready.
        fixed = schedule(name, "dst-note", "@daily")
        await api(sandbox, "PUT", f"{API}/schedules/{name}",
                  json={**fixed, "metadata": {"name": name, "resourceVersion": (await api(
                      sandbox, "GET", f"{API}/schedules/{name}"))["metadata"][
                          "resourceVersion"]}})
        await eventually(lambda: status(sandbox, name),
                         until=lambda s: ready(s).get("reason") == "Scheduled",
                         what=f"{name} to turn Ready after the fix")
    finally:
        await delete_schedule(sandbox, name)


async def test_replace_cancels_the_open_run_and_keeps_it(
        clock_sandbox: tuple[Sandbox, FakeClock]) -> None:
    """``concurrencyPolicy: Replace``: the next tick sets ``spec.cancel`` on the run still
    going (it is Cancelled, and its object and history stay), then creates its own run."""
    sandbox, clock = clock_sandbox
    name = "replace-long"
    t0 = utc("2025-07-01T00:00:00")
    clock.set(t0 - timedelta(seconds=5), speed=0)
    await sandbox.apply_objects([
        workflow("long-nap", [{"name": "nap", "type": "wait", "params": {"duration": "1h"}}]),
        schedule(name, "long-nap", "* * * * *", concurrencyPolicy="Replace")])
    try:
        await eventually(lambda: status(sandbox, name),
                         until=lambda s: s.get("nextScheduleTime") == "2025-07-01T00:00:00Z",
                         what=f"{name}'s first status")
        clock.set(t0 + timedelta(seconds=2), speed=0)
        first = await eventually(lambda: runs(sandbox, name), until=lambda r: len(r) == 1,
                                 what="the 00:00 run")
        first_name = first[0]["metadata"]["name"]
        await eventually(lambda: api(sandbox, "GET", f"{API}/executions/{first_name}"),
                         until=lambda e: e.get("status", {}).get("phase") == "Running",
                         what="the 00:00 run to run")
        clock.set(t0 + timedelta(seconds=62), speed=0)
        both = await eventually(lambda: runs(sandbox, name), until=lambda r: len(r) == 2,
                                what="the 00:01 run")
        assert scheduled(both) == ["00:00", "00:01"]
        replaced = await eventually(
            lambda: api(sandbox, "GET", f"{API}/executions/{first_name}"),
            until=lambda e: e.get("status", {}).get("phase") == "Cancelled",
            what="the 00:00 run to be cancelled")
        assert replaced["spec"]["cancel"] is True
        assert "RunReplaced" in [reason for reason, _ in await events(sandbox, name)]
    finally:
        await delete_schedule(sandbox, name)
