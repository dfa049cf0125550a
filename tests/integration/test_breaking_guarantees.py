"""Adversarial scenarios the engine survives: documented guarantees, no xfail here."""

from __future__ import annotations

import asyncio

import pytest

from conveyor_engine.api import Engine
from conveyor_engine.compiler import WorkflowInvalid
from tests.support.polling import eventually
from tests.support.runs import finished

pytestmark = pytest.mark.integration

OPEN = {"Pending", "Ready", "Running", "Waiting"}


async def test_fan_out_of_500_then_join_runs_everything_once_across_three_workers(
    engine: Engine, start_workers, pool: str
) -> None:
    n = 500
    tasks = [{"name": "root", "type": "set", "params": {"v": 0}}]
    tasks += [{"name": f"f{i}", "type": "set", "dependsOn": ["root"], "params": {"i": i}}
              for i in range(n)]
    tasks.append({"name": "join", "type": "set", "dependsOn": [f"f{i}" for i in range(n)],
                  "params": {"last": f"${{{{ tasks.f{n - 1}.outputs.i }}}}"}})
    workflow = await engine.register("fan", {"pool": pool, "tasks": tasks})
    start_workers(3, concurrency=64, batch_size=16)
    state = await finished(engine, (await engine.submit(workflow)).execution_id, timeout=120)
    assert state.phase == "Succeeded", state.message
    assert state.task("join").outputs == {"last": n - 1}
    attempts = await engine.attempts(state.execution_id)
    assert len(attempts) == n + 2 and {a.attempt for a in attempts} == {1}


async def test_two_dependencies_finishing_together_in_different_workers_start_the_join_once(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("diamonds", {"pool": pool, "tasks": [
        {"name": "a", "type": "set", "params": {"v": 1}},
        *[{"name": f"m{i}", "type": "set", "dependsOn": ["a"], "params": {"i": i}}
          for i in range(8)],
        {"name": "d", "type": "set", "dependsOn": [f"m{i}" for i in range(8)],
         "params": {"v": 2}},
    ]})
    start_workers(4, concurrency=8, batch_size=1)
    subs = await asyncio.gather(*(engine.submit(workflow) for _ in range(40)))
    for sub in subs:
        state = await finished(engine, sub.execution_id, timeout=90)
        assert state.phase == "Succeeded"
        assert state.tasks_open == 0
    rows = await engine.store._pool.fetch(
        "SELECT task_name, count(*) AS n FROM attempts WHERE execution_id = ANY($1::uuid[]) "
        "GROUP BY execution_id, task_name HAVING count(*) <> 1",
        [s.execution_id for s in subs])
    assert rows == []


async def test_deep_chain_of_200_passes_a_value_down(
    engine: Engine, start_workers, pool: str
) -> None:
    tasks = [{"name": "t0", "type": "set", "params": {"n": 0}}]
    tasks += [{"name": f"t{i}", "type": "set", "dependsOn": [f"t{i - 1}"],
               "params": {"n": f"${{{{ tasks.t{i - 1}.outputs.n + 1 }}}}"}}
              for i in range(1, 200)]
    workflow = await engine.register("chain", {"pool": pool, "tasks": tasks})
    start_workers(2)
    state = await finished(engine, (await engine.submit(workflow)).execution_id, timeout=120)
    assert state.phase == "Succeeded"
    assert state.task("t199").outputs == {"n": 199}


async def test_twenty_concurrent_submits_with_one_key_create_one_execution(
    engine: Engine, pool: str
) -> None:
    workflow = await engine.register("idem", {
        "pool": pool, "tasks": [{"name": "only", "type": "set", "params": {"v": 1}}]})
    key = f"{pool}-race"
    subs = await asyncio.gather(*(engine.submit(workflow, idempotency_key=key)
                                  for _ in range(20)))
    assert len({s.execution_id for s in subs}) == 1
    assert sum(s.created for s in subs) == 1
    stream = await engine.redis.xrange(engine.keys.stream(pool))
    assert len(stream) == 1  # dispatched once


async def test_every_task_skipped_and_when_reading_skipped_tasks(
    engine: Engine, start_workers, pool: str
) -> None:
    all_skipped = await engine.register("none", {"pool": pool, "tasks": [
        {"name": "a", "type": "set", "when": "false", "params": {"v": 1}},
        {"name": "b", "type": "set", "dependsOn": ["a"], "when": "1 > 2", "params": {}}]})
    reads = await engine.register("reads", {"pool": pool, "tasks": [
        {"name": "a", "type": "set", "when": "false", "params": {"v": 1}},
        {"name": "phase", "type": "set", "dependsOn": ["a"],
         "when": "tasks.a.phase == 'Skipped'", "params": {"seen": "${{ tasks.a.phase }}"}},
        {"name": "value", "type": "set", "dependsOn": ["a"],
         "when": "tasks.a.outputs.v == 1", "params": {}}]})
    start_workers(1)
    state = await finished(engine, (await engine.submit(all_skipped)).execution_id)
    assert state.phase == "Succeeded"
    assert [t.phase for t in state.tasks] == ["Skipped", "Skipped"]
    state = await finished(engine, (await engine.submit(reads)).execution_id)
    assert state.phase == "Failed"
    assert state.task("phase").outputs == {"seen": "Skipped"}
    assert state.task("value").phase == "Failed" and "no such key" in state.task("value").error
    assert len([a for a in await engine.attempts(state.execution_id) if a.task == "value"]) == 1


async def test_runtime_expression_error_fails_once_naming_the_field(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    workflow = await engine.register("bad-expr", {"pool": pool, "tasks": [
        {"name": "a", "type": "set", "params": {"v": 1}},
        {"name": "b", "type": "http", "dependsOn": ["a"], "retry": {"limit": 3},
         "params": {"url": f"{httpbin_url}/anything/${{{{ tasks.a.outputs.missing }}}}"}},
        {"name": "c", "type": "set", "dependsOn": ["b"], "params": {}},
        {"name": "z", "type": "set", "dependsOn": ["a"],
         "params": {"x": "${{ tasks.a.outputs.v / 0 }}"}},
    ]})
    start_workers(1)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Failed"
    assert state.task("b").phase == "Failed" and "params.url" in state.task("b").error
    assert state.task("c").phase == "Skipped"
    assert state.task("z").phase == "Failed" and "params.x" in state.task("z").error
    assert [a.attempt for a in await engine.attempts(state.execution_id) if a.task == "b"] == [1]


async def test_retry_backoff_grows_by_factor_and_is_capped(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    workflow = await engine.register("capped", {"pool": pool, "tasks": [
        {"name": "only", "type": "http", "params": {"url": f"{httpbin_url}/status/503"},
         "retry": {"limit": 3, "backoff": "300ms", "factor": 10, "maxBackoff": "800ms",
                   "jitter": "None"}}]})
    start_workers(1, dispatch_interval_seconds=0.05)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Failed"
    attempts = await engine.attempts(state.execution_id)
    assert [a.attempt for a in attempts] == [1, 2, 3, 4]
    gaps = [(attempts[i + 1].started_at - attempts[i].finished_at).total_seconds()
            for i in range(3)]
    assert 0.3 <= gaps[0] < 0.75, gaps
    assert all(0.8 <= g < 1.5 for g in gaps[1:]), gaps  # 3s would mean the cap was ignored


async def test_one_slot_worker_with_many_waits_fires_each_timer_once_and_on_time(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("waits", {"pool": pool, "tasks": [
        {"name": "pause", "type": "wait", "params": {"duration": "1s"}},
        {"name": "after", "type": "set", "dependsOn": ["pause"], "params": {"v": 1}}]})
    start_workers(3, concurrency=1)  # three dispatchers compete for the lock
    subs = await asyncio.gather(*(engine.submit(workflow) for _ in range(30)))
    for sub in subs:
        state = await finished(engine, sub.execution_id, timeout=30)
        assert state.phase == "Succeeded"
        # one slot each, 30 waits: sequential sleeping would need ~10 s per worker
        assert (state.finished_at - state.created_at).total_seconds() < 8
    rows = await engine.store._pool.fetch(
        "SELECT count(*) AS n FROM attempts WHERE execution_id = ANY($1::uuid[])",
        [s.execution_id for s in subs])
    assert rows[0]["n"] == 60


async def test_non_ascii_task_names_are_rejected_with_the_task_named(engine: Engine,
                                                                     pool: str) -> None:
    with pytest.raises(WorkflowInvalid) as info:
        await engine.register("unicode", {"pool": pool, "tasks": [
            {"name": "tâche", "type": "set", "params": {}}]})
    assert "tâche" in str(info.value) or "tasks[0].name" in str(info.value)


async def test_large_binary_body_with_nul_bytes_is_truncated_and_stored(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    workflow = await engine.register("big", {"pool": pool, "tasks": [
        {"name": "get", "type": "http", "params": {"url": f"{httpbin_url}/bytes/102400",
                                                   "maxResponseBytes": 65536}},
        {"name": "next", "type": "set", "dependsOn": ["get"],
         "params": {"t": "${{ tasks.get.outputs.truncated }}",
                    "n": "${{ size(tasks.get.outputs.text) }}"}}]})
    start_workers(1)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Succeeded", state.message
    assert state.task("next").outputs["t"] is True
    assert "\x00" not in state.task("get").outputs["text"]


async def test_sigterm_while_a_big_batch_commits_loses_and_duplicates_nothing(
    engine: Engine, start_workers, pool: str
) -> None:
    n = 300
    workflow = await engine.register("batchy", {"pool": pool, "tasks": [
        {"name": "root", "type": "set", "params": {}},
        *[{"name": f"f{i}", "type": "set", "dependsOn": ["root"], "params": {"i": i}}
          for i in range(n)]]})
    (first,) = start_workers(1, concurrency=256, batch_size=64)
    sub = await engine.submit(workflow)
    await eventually(lambda: engine.store._pool.fetchval(
        "SELECT count(*) FROM attempts WHERE execution_id = $1", sub.execution_id),
        until=lambda c: c >= 2, interval=0.005, what="some commits")
    assert first.terminate() == 0
    start_workers(1)
    state = await finished(engine, sub.execution_id, timeout=60)
    assert state.phase == "Succeeded"
    attempts = await engine.attempts(sub.execution_id)
    assert len(attempts) == n + 1 and {a.attempt for a in attempts} == {1}


async def test_cancel_during_a_storm_of_commits_leaves_no_open_task(
    engine: Engine, start_workers, pool: str
) -> None:
    n = 300
    workflow = await engine.register("storm", {"pool": pool, "tasks": [
        {"name": "root", "type": "set", "params": {}},
        *[{"name": f"f{i}", "type": "set", "dependsOn": ["root"], "params": {"i": i}}
          for i in range(n)],
        # Keeps the execution open however fast the storm goes, so the cancel always lands.
        {"name": "hold", "type": "wait", "dependsOn": ["root"], "params": {"duration": "60s"}},
        {"name": "join", "type": "set", "dependsOn": [*(f"f{i}" for i in range(n)), "hold"],
         "params": {}}]})
    workers = start_workers(3, concurrency=64, batch_size=8)
    sub = await engine.submit(workflow)
    await eventually(lambda: engine.store._pool.fetchval(
        "SELECT count(*) FROM attempts WHERE execution_id = $1", sub.execution_id),
        until=lambda c: c >= 20, interval=0.005, what="commits under way")
    assert await engine.cancel(sub.execution_id)
    state = await engine.get(sub.execution_id)
    assert state.phase == "Cancelled" and state.tasks_open == 0
    await eventually(lambda: engine.queue.backlog(pool),
                     until=lambda b: (b.queued, b.in_flight) == (0, 0), what="drained stream")
    state = await engine.get(sub.execution_id)
    assert state.phase == "Cancelled"
    assert not [t.name for t in state.tasks if t.phase in OPEN]
    assert state.task("join").phase == "Cancelled"
    for worker in workers:
        assert "outcomes failed" not in worker.log()
