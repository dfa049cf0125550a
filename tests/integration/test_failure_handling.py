"""Failure handling and deadlines (issue 12 items 3 and 4) with real worker processes,
Redis and PostgreSQL: continueOn, onFailure with the failed task's error in scope,
finally on success, failure and deadline, a deadline interrupting a long task."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor_engine.api import Engine
from tests.support.counting import counting_server
from tests.support.runs import finished
from tests.support.scripted_http import scripted_server

pytestmark = pytest.mark.integration





def failing(name: str, base: str, **extra: object) -> dict:
    """An http task that fails for good: the scripted server answers 404 (not retried)."""
    return {"name": name, "type": "http", "params": {"url": f"{base}/missing/{name}"},
            **extra}


def echo(name: str, *deps: str, **values: str) -> dict:
    return {"name": name, "type": "set", "dependsOn": list(deps),
            "params": {k: "${{ " + v + " }}" for k, v in values.items()}}


@pytest.mark.parametrize("goes_on", [False, True])
async def test_failing_task_with_and_without_continue_on(
    engine: Engine, start_workers, pool: str, goes_on: bool
) -> None:
    """Without continueOn the failure skips b and fails the run; with continueOn.failed b
    runs, sees tasks.a.phase == "Failed" and tasks.a.error, and the run succeeds (Argo's
    rule: every task without continueOn succeeded), saying so in its message."""
    with scripted_server({}) as (base, _):
        extra = {"continueOn": {"failed": True}} if goes_on else {}
        workflow = await engine.register(f"continue-{goes_on}".lower(), {"pool": pool, "tasks": [
            failing("a", base, **extra),
            echo("b", "a", phase="tasks.a.phase", error="tasks.a.error")]})
        start_workers(1, dispatch_interval_seconds=0.05)
        state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.task("a").phase == "Failed"
    if not goes_on:
        assert state.phase == "Failed" and state.task("b").phase == "Skipped"
        assert state.message == "1 of 2 task(s) failed"
        return
    assert state.phase == "Succeeded", state
    assert "1 of 2 task(s) failed with continueOn.failed" in state.message
    b = state.task("b")
    assert b.phase == "Succeeded"
    assert b.outputs["phase"] == "Failed"
    assert "404" in b.outputs["error"] and b.outputs["error"] == state.task("a").error


async def test_on_failure_sees_the_error_and_finally_runs_after_a_failure(
    engine: Engine, start_workers, pool: str
) -> None:
    """a fails: c is skipped, then onFailure's notify runs with a's error, the run's phase
    and failed tasks in scope, and finally's two chained tasks run. The run stays Failed
    with its original message."""
    with scripted_server({}) as (base, _):
        workflow = await engine.register("on-failure", {"pool": pool, "tasks": [
            failing("a", base), echo("ok", x="1"), echo("c", "a", x="1")],
            "onFailure": [echo("notify", error="tasks.a.error", phase="execution.phase",
                               failed="execution.failedTasks", reason="execution.reason",
                               okPhase="tasks.ok.phase")],
            "finally": [echo("cleanup", c="tasks.c.phase"),
                        echo("report", "cleanup", after="tasks.cleanup.outputs.c")]})
        start_workers(1, dispatch_interval_seconds=0.05)
        state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Failed", state
    assert state.message == "1 of 3 task(s) failed"
    phases = {t.name: t.phase for t in state.tasks}
    assert phases == {"a": "Failed", "ok": "Succeeded", "c": "Skipped", "notify": "Succeeded",
                      "cleanup": "Succeeded", "report": "Succeeded"}
    notify = state.task("notify").outputs
    assert notify["error"] == state.task("a").error and "404" in notify["error"]
    assert notify["phase"] == "Failed" and notify["failed"] == ["a"]
    assert notify["reason"] is None and notify["okPhase"] == "Succeeded"
    assert state.task("report").outputs == {"after": "Skipped"}
    assert state.task("notify").stage == "onFailure"


async def test_finally_runs_on_success_and_on_failure_is_skipped(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("on-success", {"pool": pool, "tasks": [echo("a", x="1")],
        "onFailure": [echo("notify", e="tasks.a.error")],
        "finally": [echo("cleanup", phase="execution.phase",
                         out="has(tasks.a.outputs.x) ? tasks.a.outputs.x : 'none'")]})
    start_workers(1, dispatch_interval_seconds=0.05)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Succeeded", state
    assert state.message == "all 1 task(s) succeeded or were skipped"
    assert state.task("notify").phase == "Skipped"
    assert "run only when the run fails" in state.task("notify").message
    assert state.task("cleanup").outputs == {"phase": "Succeeded", "out": 1}


async def test_a_handler_failure_does_not_hide_the_original_one(
    engine: Engine, start_workers, pool: str
) -> None:
    """A failed finally after a success fails the run (reason HandlerFailed); after a
    failure the run stays Failed with its message first, the handler's failure added."""
    with scripted_server({}) as (base, _):
        after_ok = await engine.register("handler-fails-ok", {"pool": pool,
            "tasks": [echo("a", x="1")], "finally": [failing("cleanup", base)]})
        after_fail = await engine.register("handler-fails-fail", {"pool": pool,
            "tasks": [failing("a", base)], "onFailure": [failing("notify", base)]})
        start_workers(1, dispatch_interval_seconds=0.05)
        ok = await finished(engine, (await engine.submit(after_ok)).execution_id)
        bad = await finished(engine, (await engine.submit(after_fail)).execution_id)
    assert (ok.phase, ok.reason) == ("Failed", "HandlerFailed")
    assert ok.message == ("all 1 task(s) succeeded or were skipped; "
                          "1 of 1 handler task(s) failed")
    assert (bad.phase, bad.reason) == ("Failed", None)
    assert bad.message == "1 of 1 task(s) failed; 1 of 1 handler task(s) failed"


async def test_deadline_interrupts_a_long_task_and_finally_still_runs(
    engine: Engine, start_workers, pool: str
) -> None:
    """activeDeadlineSeconds 2 (the Execution's, over the workflow's 600): the 30 s call is
    interrupted, the waiting task cancelled, the run Failed with reason DeadlineExceeded,
    and finally runs, seeing the reason; long before the call would have ended."""
    with counting_server() as (base, hits):
        workflow = await engine.register("deadline", {"pool": pool, "activeDeadlineSeconds": 600,
            "tasks": [{"name": "long", "type": "http", "params": {"url": f"{base}/slow/30/x"},
                       "timeout": "60s"},
                      echo("next", "long", x="1")],
            "finally": [echo("cleanup", reason="execution.reason",
                             long="tasks.long.phase")]})
        start_workers(1, dispatch_interval_seconds=0.05)
        started = time.monotonic()
        execution_id = (await engine.submit(workflow, deadline_seconds=2)).execution_id
        state = await finished(engine, execution_id, timeout=25)
        elapsed = time.monotonic() - started
    assert hits.get("/slow/30/x") == 1
    assert (state.phase, state.reason) == ("Failed", "DeadlineExceeded"), state
    assert state.message.startswith("deadline exceeded: activeDeadlineSeconds (2s) passed")
    assert state.task("long").phase == "Cancelled" and state.task("next").phase == "Cancelled"
    assert state.task("cleanup").outputs == {"reason": "DeadlineExceeded", "long": "Cancelled"}
    assert elapsed < 20, elapsed
    attempts = [(a.task, a.outcome) for a in await engine.attempts(execution_id)]
    assert ("cleanup", "Succeeded") in attempts


async def test_deadline_without_handlers_and_the_workflow_default(
    engine: Engine, start_workers, pool: str
) -> None:
    """The workflow's activeDeadlineSeconds is the default of its runs; with no handlers
    the run finishes at the deadline."""
    with counting_server() as (base, _):
        workflow = await engine.register("deadline-default", {"pool": pool,
            "activeDeadlineSeconds": 1, "tasks": [
                {"name": "long", "type": "http", "params": {"url": f"{base}/slow/20/y"}}]})
        start_workers(1, dispatch_interval_seconds=0.05)
        execution_id = (await engine.submit(workflow)).execution_id
        state = await finished(engine, execution_id, timeout=15)
    assert (state.phase, state.reason) == ("Failed", "DeadlineExceeded")
    assert state.deadline_at is not None
    assert state.task("long").phase == "Cancelled"


async def test_suspension_stops_the_deadline_clock_as_for_a_job(
    engine: Engine, start_workers, pool: str
) -> None:
    """batch/v1 Job's rule: a run created suspended cannot pass its 1 s deadline while
    suspended (it stays open, with no deadline set, across several deadline lengths of the
    dispatcher's sweeps); once resumed, the full second runs again and the run ends
    DeadlineExceeded with finally run."""
    with counting_server() as (base, _):
        workflow = await engine.register("deadline-suspended", {
            "pool": pool, "activeDeadlineSeconds": 1,
            "tasks": [{"name": "long", "type": "http",
                       "params": {"url": f"{base}/slow/20/z"}}],
            "finally": [echo("cleanup", reason="execution.reason")]})
        start_workers(1, dispatch_interval_seconds=0.05)
        execution_id = (await engine.submit(workflow, suspended=True)).execution_id
        assert await engine.suspend(execution_id) is False  # created suspended already
        held = await engine.get(execution_id)
        assert held.deadline_at is not None  # set at admission; the sweep passes it by
        # A quiet window of 3 deadlines: sampled, it must stay open the whole time.
        samples = set()
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            seen = await engine.get(execution_id)
            samples.add((seen.phase, seen.reason, seen.task("long").phase))
            await asyncio.sleep(0.2)
        assert samples == {("Pending", None, "Ready")}, samples
        assert await engine.resume(execution_id)
        resumed = await engine.get(execution_id)
        assert resumed.deadline_at is not None and resumed.deadline_at > held.deadline_at
        state = await finished(engine, execution_id, timeout=20)
    assert (state.phase, state.reason) == ("Failed", "DeadlineExceeded"), state
    assert state.task("cleanup").outputs == {"reason": "DeadlineExceeded"}
