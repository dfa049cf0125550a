"""Lifecycle after submission (issue 9), with real worker processes and real stores:
suspend and resume, cancel, and retry from the failed step. A counting or scripted loopback
server is the side effect checked: a task that must not run again is seen once."""

from __future__ import annotations

import pytest

from conveyor_engine.api import Engine
from conveyor_engine.store import ExecutionState
from tests.support.counting import counting_server
from tests.support.polling import eventually
from tests.support.scripted_http import scripted_server

pytestmark = pytest.mark.integration

FINAL = {"Succeeded", "Failed", "Cancelled"}


async def settled(engine: Engine, execution_id: str, until, what: str,
                  timeout: float = 60.0) -> ExecutionState:
    return await eventually(lambda: engine.get(execution_id),
                            until=lambda s: s is not None and until(s),
                            timeout=timeout, what=what)


async def finished(engine: Engine, execution_id: str) -> ExecutionState:
    return await settled(engine, execution_id, lambda s: s.phase in FINAL,
                         f"execution {execution_id} to finish")


def http(name: str, url: str, *, after: tuple[str, ...] = (), **extra: object) -> dict:
    task = {"name": name, "type": "http", "params": {"url": url}, **extra}
    if after:
        task["dependsOn"] = list(after)
    return task


async def test_retry_runs_again_only_what_did_not_succeed(
    engine: Engine, start_workers, pool: str
) -> None:
    """a → b → c, and d beside them. b fails twice (retry.limit 1) and the run fails with c
    skipped. A retry runs b and c again, not a or d: the server sees a and d once. b gets
    a fresh retry budget (fails once more, then succeeds at attempt 4) and every attempt
    stays in the history; c reads b's outputs of the new round."""
    script = {"/a": [(200, {})], "/d": [(200, {})], "/c": [(200, {})],
              "/b": [(500, {}), (500, {}), (500, {}), (200, {})]}
    with scripted_server(script) as (base, arrivals):
        workflow = await engine.register("retry-step", {"pool": pool, "tasks": [
            http("a", f"{base}/a"),
            http("b", f"{base}/b", after=("a",), retry={"limit": 1, "backoff": "50ms"}),
            {"name": "c", "type": "set", "dependsOn": ["b"],
             "params": {"values": {"status": "${{ tasks.b.outputs.statusCode }}"}}},
            http("d", f"{base}/d")]})
        start_workers(1, dispatch_interval_seconds=0.05)
        execution_id = (await engine.submit(workflow)).execution_id
        first = await finished(engine, execution_id)
        assert first.phase == "Failed"
        assert {t.name: t.phase for t in first.tasks} == {
            "a": "Succeeded", "b": "Failed", "c": "Skipped", "d": "Succeeded"}

        retried = await engine.retry(execution_id)
        assert retried is not None and retried.retries == 1
        assert set(retried.tasks) == {"b", "c"}
        second = await finished(engine, execution_id)
        assert second.phase == "Succeeded", second
        assert await engine.retry(execution_id) is None, "a run that succeeded has no retry"
    assert second.phase == "Succeeded", second
    assert second.retries == 1
    assert second.task("c").outputs == {"values": {"status": 200}}
    assert {path: len(seen) for path, seen in arrivals.items()} == {
        "/a": 1, "/d": 1, "/b": 4}
    history = [(a.task, a.attempt, a.outcome) for a in await engine.attempts(execution_id)]
    assert history == [("a", 1, "Succeeded"), ("b", 1, "Failed"), ("b", 2, "Failed"),
                       ("b", 3, "Failed"), ("b", 4, "Succeeded"), ("c", 1, "Succeeded"),
                       ("d", 1, "Succeeded")]


async def test_retry_of_a_cancelled_run_and_refusals(
    engine: Engine, start_workers, pool: str
) -> None:
    """A run cancelled while b is pending is retried: b runs once, a not again. A run
    still open, or unknown, is not retried."""
    with counting_server() as (base, hits):
        workflow = await engine.register("retry-cancelled", {"pool": pool, "tasks": [
            http("a", f"{base}/slow/1/a"), http("b", f"{base}/b", after=("a",))]})
        start_workers(1, dispatch_interval_seconds=0.05)
        execution_id = (await engine.submit(workflow)).execution_id
        await settled(engine, execution_id, lambda s: s.task("a").phase == "Running",
                      "a to run")
        assert await engine.retry(execution_id) is None, "an open run is not retried"
        assert await engine.cancel(execution_id)
        cancelled = await finished(engine, execution_id)
        assert cancelled.phase == "Cancelled"
        retried = await engine.retry(execution_id)
        assert retried is not None and set(retried.tasks) == {"a", "b"}
        done = await finished(engine, execution_id)
    assert done.phase == "Succeeded"
    assert hits.get("/b") == 1
    assert await engine.retry("00000000-0000-0000-0000-000000000000") is None


async def test_suspend_holds_new_tasks_and_resume_continues(
    engine: Engine, start_workers, pool: str
) -> None:
    """Suspended while a runs: a finishes, b (released by a) does not start, even after
    several dispatcher passes (its grace is short) and while other work flows through the
    same workers. Resumed: b runs once and the run succeeds. Created suspended: nothing
    starts until resumed. Suspend and resume are idempotent."""
    with counting_server() as (base, hits):
        workflow = await engine.register("suspend", {"pool": pool, "tasks": [
            http("a", f"{base}/slow/1.5/a"), http("b", f"{base}/b", after=("a",))]})
        other = await engine.register("sentinel", {"pool": pool, "tasks": [
            http("s", f"{base}/slow/1.5/s")]})
        start_workers(1, dispatch_interval_seconds=0.05, dispatch_grace_seconds=0.3)
        execution_id = (await engine.submit(workflow)).execution_id
        await settled(engine, execution_id, lambda s: s.task("a").phase == "Running",
                      "a to run")
        assert await engine.suspend(execution_id)
        assert not await engine.suspend(execution_id), "suspending twice is one action"
        held = await settled(engine, execution_id, lambda s: s.task("a").phase == "Succeeded",
                             "a to finish while suspended")
        assert held.suspended
        parked = (await engine.submit(workflow, suspended=True)).execution_id
        sentinel = (await engine.submit(other)).execution_id
        await finished(engine, sentinel)  # the workers ran later work, and the grace passed
        state = await engine.get(execution_id)
        assert state is not None and state.phase == "Running"
        assert state.task("b").phase == "Ready" and "/b" not in hits
        parked_state = await engine.get(parked)
        assert parked_state is not None
        assert {t.phase for t in parked_state.tasks} == {"Ready", "Pending"}
        assert hits["/slow/1.5/a"] == 1

        assert await engine.resume(execution_id)
        assert not await engine.resume(execution_id), "resuming twice is one action"
        done = await finished(engine, execution_id)
        assert await engine.resume(parked)
        parked_done = await finished(engine, parked)
    assert done.phase == "Succeeded" and not done.suspended
    assert parked_done.phase == "Succeeded"
    assert hits["/b"] == 2 and hits["/slow/1.5/a"] == 2  # one each per execution
