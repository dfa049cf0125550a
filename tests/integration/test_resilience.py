"""Nothing is lost and nothing is recorded twice when workers die, stop, or lose dispatches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.api import Engine
from conveyor_engine.store import TaskRef
from tests.support.polling import eventually
from tests.support.runs import finished

pytestmark = pytest.mark.integration


def one_task(pool: str, params: dict, type_: str = "http") -> dict:
    return {"pool": pool, "tasks": [{"name": "only", "type": type_, "params": params}]}


async def running_on(engine: Engine, execution_id: str) -> str:
    state = await eventually(lambda: engine.get(execution_id),
                             until=lambda s: s.task("only").phase == "Running",
                             what="the task to be running")
    return state.execution_id


async def test_sigterm_lets_the_running_task_finish_then_exits_cleanly(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    workflow = await engine.register("graceful", one_task(pool, {"url": f"{httpbin_url}/delay/1"}))
    (worker,) = start_workers(1, shutdown_grace_seconds=30)
    submission = await engine.submit(workflow)
    await running_on(engine, submission.execution_id)

    assert worker.terminate() == 0
    state = await engine.get(submission.execution_id)
    assert state.phase == "Succeeded"
    assert [a.outcome for a in await engine.attempts(submission.execution_id)] == ["Succeeded"]
    backlog = await engine.queue.backlog(pool)
    assert (backlog.queued, backlog.in_flight) == (0, 0)


async def test_sigterm_past_the_grace_period_hands_the_task_back_to_run_once_elsewhere(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    workflow = await engine.register("handback", one_task(pool, {"url": f"{httpbin_url}/delay/3"}))
    (first,) = start_workers(1, shutdown_grace_seconds=0.2)
    submission = await engine.submit(workflow)
    await running_on(engine, submission.execution_id)

    assert first.terminate() == 0
    assert "handing back 1 unfinished task(s)" in first.log()
    state = await engine.get(submission.execution_id)
    assert state.task("only").phase == "Ready"

    start_workers(1)
    state = await finished(engine, submission.execution_id)
    assert state.phase == "Succeeded"
    attempts = await engine.attempts(submission.execution_id)
    assert [(a.attempt, a.outcome, a.worker[:3]) for a in attempts] == [(1, "Succeeded", "w1-")]


async def test_ready_task_whose_stream_entry_was_lost_is_dispatched_again(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("lost", one_task(pool, {"v": 1}, "set"))
    submission = await engine.submit(workflow)
    # A crash between the commit and XADD: the task is Ready in PostgreSQL, absent from Redis.
    await engine.redis.xtrim(engine.keys.stream(pool), maxlen=0)
    assert (await engine.queue.backlog(pool)).queued == 0

    (worker,) = start_workers(1, dispatch_grace_seconds=0.5)
    state = await finished(engine, submission.execution_id, timeout=30)
    assert state.phase == "Succeeded"
    assert "re-dispatching 1 ready task(s)" in worker.log()


async def test_attempt_delivered_too_often_is_dead_lettered_and_fails_its_task(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("poison", {
        "pool": pool,
        "tasks": [{"name": "only", "type": "set", "params": {"v": 1}},
                  {"name": "next", "type": "set", "dependsOn": ["only"], "params": {"v": 2}}],
    })
    submission = await engine.submit(workflow)
    stream, group = engine.keys.stream(pool), engine.keys.group(pool)
    # A ghost consumer that claimed the entry five times and died each time.
    reply = await engine.redis.xreadgroup(group, "ghost", {stream: ">"}, count=1)
    message_id = reply[0][1][0][0]
    for _ in range(4):
        await engine.redis.xclaim(stream, group, "ghost", 0, [message_id])
    await engine.store.claim([TaskRef(submission.execution_id, "only", 1)], worker="ghost",
                             now=datetime.now(UTC), lease=timedelta(seconds=1))

    start_workers(1, lease_seconds=1, max_deliveries=5)
    state = await finished(engine, submission.execution_id)
    assert state.phase == "Failed"
    assert "dead-letter" in state.task("only").error
    assert state.task("next").phase == "Skipped"
    dead = await engine.redis.xrange(engine.keys.dead_letter(pool))
    assert len(dead) == 1 and dead[0][1]["t"] == "only" and dead[0][1]["id"] == message_id
