"""Executions run end to end by real worker processes against real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from conveyor_engine.api import Engine
from tests.support.polling import eventually
from tests.support.runs import finished

pytestmark = pytest.mark.integration





def diamond(httpbin_url: str, pool: str) -> dict[str, Any]:
    """a -> (b, c) -> d; d posts values derived from b's and c's JSON responses."""
    return {
        "pool": pool,
        "inputs": [{"name": "user", "default": "ada"}, {"name": "n"}],
        "tasks": [
            {"name": "a", "type": "http", "params": {"url": f"{httpbin_url}/uuid"}},
            {"name": "b", "type": "http", "dependsOn": ["a"], "params": {
                "url": f"{httpbin_url}/anything/b",
                "method": "POST",
                "json": {"user": "${{ inputs.user }}", "id": "${{ tasks.a.outputs.json.uuid }}"},
            }},
            {"name": "c", "type": "http", "dependsOn": ["a"], "params": {
                "url": f"{httpbin_url}/get",
                "query": {"n": "${{ inputs.n * 2 }}"},
            }},
            {"name": "d", "type": "http", "dependsOn": ["b", "c"], "params": {
                "url": f"{httpbin_url}/anything/d",
                "method": "POST",
                "json": {
                    "user": "${{ tasks.b.outputs.json.json.user }}",
                    "doubled": "${{ tasks.c.outputs.json.args.n }}",
                    "greeting": "hello ${{ tasks.b.outputs.json.json.user }}",
                },
            }},
        ],
    }


async def test_diamond_of_http_calls_runs_each_task_once_across_two_workers(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    workflow = await engine.register("diamond", diamond(httpbin_url, pool))
    start_workers(2, concurrency=4)

    submission = await engine.submit(workflow, {"n": 21}, idempotency_key="diamond-1")
    state = await finished(engine, submission.execution_id)

    assert state.phase == "Succeeded", state
    assert [t.name for t in state.tasks] == ["a", "b", "c", "d"]
    assert {t.phase for t in state.tasks} == {"Succeeded"}
    d = state.task("d").outputs
    assert d["statusCode"] == 200
    assert d["json"]["json"] == {"user": "ada", "doubled": "42", "greeting": "hello ada"}
    assert state.task("b").outputs["json"]["json"]["id"] == state.task("a").outputs["json"]["uuid"]
    attempts = await engine.attempts(submission.execution_id)
    assert sorted((a.task, a.attempt, a.outcome) for a in attempts) == [
        ("a", 1, "Succeeded"), ("b", 1, "Succeeded"), ("c", 1, "Succeeded"),
        ("d", 1, "Succeeded")]
    assert state.started_at and state.finished_at and state.finished_at >= state.started_at


async def test_failing_call_is_retried_with_backoff_then_fails_and_skips_dependents(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    workflow = await engine.register("flaky", {
        "pool": pool,
        "tasks": [
            {"name": "call", "type": "http", "params": {"url": f"{httpbin_url}/status/503"},
             "retry": {"limit": 2, "backoff": "200ms", "factor": 2, "jitter": "None"}},
            {"name": "after", "type": "set", "dependsOn": ["call"], "params": {"x": 1}},
            {"name": "later", "type": "set", "dependsOn": ["after"], "params": {"x": 2}},
            {"name": "independent", "type": "set", "params": {"x": 3}},
        ],
    })
    start_workers(1)
    submission = await engine.submit(workflow)
    state = await finished(engine, submission.execution_id)

    assert state.phase == "Failed"
    call = state.task("call")
    assert call.phase == "Failed" and call.attempt == 3
    assert "HTTP 503" in call.error
    assert state.task("after").phase == "Skipped"
    assert "upstream task 'call' failed" in state.task("after").message
    assert state.task("later").phase == "Skipped"
    assert state.task("independent").phase == "Succeeded"
    attempts = [a for a in await engine.attempts(submission.execution_id) if a.task == "call"]
    assert [(a.attempt, a.outcome) for a in attempts] == [
        (1, "Failed"), (2, "Failed"), (3, "Failed")]
    # Backoff 200ms then 400ms: each retry starts no earlier than its wait after the failure.
    gap1 = (attempts[1].started_at - attempts[0].finished_at).total_seconds()
    gap2 = (attempts[2].started_at - attempts[1].finished_at).total_seconds()
    assert gap1 >= 0.2 and gap2 >= 0.4, (gap1, gap2)


async def test_when_false_skips_a_branch_and_dependents_still_run(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("branches", {
        "pool": pool,
        "inputs": [{"name": "mode", "default": "fast"}],
        "tasks": [
            {"name": "start", "type": "set", "params": {"mode": "${{ inputs.mode }}"}},
            {"name": "slow", "type": "set", "dependsOn": ["start"],
             "when": "tasks.start.outputs.mode == 'slow'", "params": {"path": "slow"}},
            {"name": "fast", "type": "set", "dependsOn": ["start"],
             "when": "tasks.start.outputs.mode == 'fast'", "params": {"path": "fast"}},
            {"name": "join", "type": "set", "dependsOn": ["slow", "fast"], "params": {
                "chosen": "${{ tasks.fast.phase == 'Succeeded' ? tasks.fast.outputs.path"
                          " : tasks.slow.outputs.path }}"}},
        ],
    })
    start_workers(1)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)

    assert state.phase == "Succeeded"
    assert state.task("slow").phase == "Skipped"
    assert "when condition was false" in state.task("slow").message
    assert state.task("fast").phase == "Succeeded"
    assert state.task("join").outputs == {"chosen": "fast"}


async def test_wait_holds_no_worker_slot(engine: Engine, start_workers, pool: str) -> None:
    workflow = await engine.register("sleepy", {
        "pool": pool,
        "tasks": [{"name": "pause", "type": "wait", "params": {"duration": "2s"}}],
    })
    quick = await engine.register("quick", {
        "pool": pool, "tasks": [{"name": "only", "type": "set", "params": {"v": 1}}],
    })
    start_workers(1, concurrency=1)
    waiting = await engine.submit(workflow)
    await eventually(lambda: engine.get(waiting.execution_id),
                     until=lambda s: s.task("pause").phase == "Waiting",
                     what="the wait to hold a durable timer")
    # With one slot, this only runs if the waiting task released it.
    other = await finished(engine, (await engine.submit(quick)).execution_id, timeout=10)
    still = await engine.get(waiting.execution_id)
    assert other.phase == "Succeeded"
    assert still.task("pause").phase == "Waiting"

    done = await finished(engine, waiting.execution_id)
    assert done.phase == "Succeeded"
    assert (done.finished_at - done.started_at).total_seconds() >= 2.0
    assert done.task("pause").outputs == {"waitedSeconds": 2.0}


async def test_repeated_submit_with_same_key_returns_same_execution(
    engine: Engine, pool: str
) -> None:
    workflow = await engine.register("once", {
        "pool": pool, "tasks": [{"name": "only", "type": "set", "params": {"v": 1}}],
    })
    first, second = await asyncio.gather(
        engine.submit(workflow, idempotency_key=f"{pool}-key"),
        engine.submit(workflow, idempotency_key=f"{pool}-key"),
    )
    third = await engine.submit(workflow, idempotency_key=f"{pool}-key")
    assert first.execution_id == second.execution_id == third.execution_id
    assert sorted([first.created, second.created]) == [False, True]
    assert third.created is False
    count = await engine.store._pool.fetchval(
        "SELECT count(*) FROM executions WHERE idempotency_key = $1", f"{pool}-key")
    assert count == 1


async def test_cancel_stops_running_and_queued_tasks_and_keeps_history(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    workflow = await engine.register("long", {
        "pool": pool,
        "tasks": [
            {"name": "first", "type": "set", "params": {"v": 1}},
            {"name": "slow", "type": "http", "dependsOn": ["first"],
             "params": {"url": f"{httpbin_url}/delay/10"}},
            {"name": "after", "type": "set", "dependsOn": ["slow"], "params": {"v": 2}},
        ],
    })
    start_workers(1)
    submission = await engine.submit(workflow)
    await eventually(lambda: engine.get(submission.execution_id),
                     until=lambda s: s.task("slow").phase == "Running",
                     what="the slow task to run")
    assert await engine.cancel(submission.execution_id, "test cancels it")
    state = await engine.get(submission.execution_id)
    assert state.phase == "Cancelled"
    assert state.task("first").phase == "Succeeded"
    assert state.task("slow").phase == "Cancelled"
    assert state.task("after").phase == "Cancelled"
    assert not await engine.cancel(submission.execution_id)
    attempts = await engine.attempts(submission.execution_id)
    assert [(a.task, a.outcome) for a in attempts] == [("first", "Succeeded")]
    # The running HTTP call (10 s) was interrupted: the worker acknowledged its entry early.
    backlog = await eventually(lambda: engine.queue.backlog(pool),
                               until=lambda b: b.in_flight == 0 and b.queued == 0,
                               timeout=5, what="the cancelled task's entry to be acked")
    assert backlog.in_flight == 0


async def test_a_task_can_run_on_its_own_pool(
    engine: Engine, start_workers, pool: str
) -> None:
    heavy = f"{pool}-heavy"
    workflow = await engine.register("split", {
        "pool": pool,
        "tasks": [
            {"name": "light", "type": "set", "params": {"v": 1}},
            {"name": "big", "type": "set", "pool": heavy, "dependsOn": ["light"],
             "params": {"v": "${{ tasks.light.outputs.v + 1 }}"}},
        ],
    })
    start_workers(1)  # serves only the workflow's pool
    submission = await engine.submit(workflow)
    await eventually(lambda: engine.queue.backlog(heavy), until=lambda b: b.queued == 1,
                     what="the heavy task to wait on its own pool's stream")
    assert (await engine.get(submission.execution_id)).task("big").phase == "Ready"
    start_workers(1, pool=heavy)
    state = await finished(engine, submission.execution_id)
    assert state.phase == "Succeeded" and state.task("big").outputs == {"v": 2}
    attempts = {a.task: a.worker for a in await engine.attempts(submission.execution_id)}
    assert attempts["light"].startswith("w0-") and attempts["big"].startswith("w1-")


async def test_worker_serves_readiness_health_and_metrics(
    engine: Engine, start_workers, pool: str
) -> None:
    import httpx

    from conveyor_sandbox.services import find_free_port

    port = find_free_port()
    start_workers(1, metrics_port=port)
    workflow = await engine.register("metered", {
        "pool": pool, "tasks": [{"name": "only", "type": "set", "params": {"v": 1}}]})
    await finished(engine, (await engine.submit(workflow)).execution_id)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/healthz")).text == "ok\n"
        metrics = (await client.get("/metrics")).text
    assert 'conveyor_task_attempts_total{outcome="succeeded",type="set"} 1.0' in metrics
