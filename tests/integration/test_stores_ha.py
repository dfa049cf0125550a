"""Redis high availability with real servers: a Sentinel group whose master is killed in the
middle of a run, and a three-master Redis Cluster. Work goes on; every execution succeeds
with each task recorded exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from conveyor_engine.api import Engine
from conveyor_sandbox.services.redis_ha import (
    RedisCluster,
    SentinelGroup,
    redis_cluster,
    sentinel_group,
)
from tests.support.polling import eventually
from tests.support.stores import all_final, assert_each_task_recorded_once, chain, quietly
from tests.support.workers import WorkerProcess, worker_env

pytestmark = pytest.mark.integration


@pytest.fixture
def sentinels() -> Iterator[SentinelGroup]:
    with sentinel_group() as group:
        yield group


@pytest.fixture
def cluster() -> Iterator[RedisCluster]:
    with redis_cluster() as nodes:
        yield nodes


def start_workers(n: int, name: str, **settings: object) -> list[WorkerProcess]:
    env = worker_env(**{k: str(v) for k, v in settings.items()})
    workers = [WorkerProcess(env, f"{name}{i}") for i in range(n)]
    for worker in workers:
        worker.wait_serving()
    return workers


def stop(workers: list[WorkerProcess]) -> None:
    for worker in workers:
        worker.terminate()
        print(f"--- {worker.log_path}\n{worker.log()[-3000:]}")


@pytest.mark.slow
async def test_sentinel_failover_mid_run_loses_and_doubles_nothing(
    sentinels: SentinelGroup, database_url: str, key_prefix: str, pool: str, httpbin_url: str,
) -> None:
    engine = await Engine.connect(redis_url=sentinels.url, database_url=database_url,
                                  key_prefix=key_prefix)
    workers = start_workers(
        2, "w-sentinel", redis_url=sentinels.url, database_url=database_url,
        key_prefix=key_prefix, pool=pool, redis_timeout_seconds=2, lease_seconds=3,
        dispatch_grace_seconds=1, dependency_check_seconds=0.5, concurrency=8)
    try:
        workflow = await engine.register("failover", chain(pool, httpbin_url, length=4))
        ids = [(await engine.submit(workflow)).execution_id for _ in range(20)]
        await eventually(lambda: engine.attempts(ids[0]), timeout=30,
                         what="work to be under way")
        old = sentinels.master()
        old.kill()  # SIGKILL the master in the middle of the run
        await eventually(lambda: asyncio.to_thread(sentinels.master_port),
                         until=lambda port: port != old.port, timeout=30,
                         what="the sentinel to promote the replica")
        # Work submitted after the failover goes to the new master.
        more = []
        for _ in range(3):
            submitted = await eventually(lambda: quietly(lambda: engine.submit(workflow)),
                                         timeout=30, what="a submit on the new master")
            more.append(submitted.execution_id)
        phases = await all_final(engine, ids + more, timeout=90)
        assert set(phases.values()) == {"Succeeded"}, phases
        await assert_each_task_recorded_once(engine, ids + more, 4)
        logs = [worker.log() for worker in workers]
        # The workers met the failover mid-run (an outage each saw once, then its end) ...
        assert any("redis is unreachable" in log for log in logs), logs[0][-4000:]
        for log in logs:
            assert log.count("redis is unreachable") == log.count("redis is reachable again")
            # ... without a traceback per retry.
            assert "Traceback" not in log, log[-4000:]
    finally:
        stop(workers)
        await engine.close()


async def test_executions_run_end_to_end_on_a_three_master_cluster(
    cluster: RedisCluster, database_url: str, key_prefix: str, pool: str,
) -> None:
    engine = await Engine.connect(redis_url=cluster.url, database_url=database_url,
                                  key_prefix=key_prefix)
    workers = start_workers(2, "w-cluster", redis_url=cluster.url, database_url=database_url,
                            key_prefix=key_prefix, pool=pool, concurrency=8)
    events = engine.events()
    first_event = asyncio.ensure_future(anext(events))  # pub/sub works in a cluster
    try:
        diamond = {"pool": pool, "tasks": [
            {"name": "t0", "type": "set", "params": {"v": "${{ inputs.n }}"}},
            {"name": "t1", "type": "set", "dependsOn": ["t0"],
             "params": {"v": "${{ tasks.t0.outputs.v }}"}},
            {"name": "t2", "type": "wait", "dependsOn": ["t0"], "params": {"duration": "1s"}},
            {"name": "t3", "type": "set", "dependsOn": ["t1", "t2"],
             "params": {"v": "${{ tasks.t1.outputs.v }}"}},
        ], "inputs": [{"name": "n"}]}
        workflow = await engine.register("cluster", diamond)
        ids = [(await engine.submit(workflow, inputs={"n": n})).execution_id
               for n in range(10)]
        phases = await all_final(engine, ids, timeout=60)
        assert set(phases.values()) == {"Succeeded"}, phases
        await assert_each_task_recorded_once(engine, ids, 4)
        state = await engine.get(ids[7])
        assert state.task("t3").outputs == {"v": 7}
        assert await asyncio.wait_for(first_event, 10)
        # The pool's keys hash to one slot; the execution's keys to one slot each.
        slots = {await engine.redis.cluster_keyslot(k) for k in (
            engine.keys.stream(pool), engine.keys.dead_letter(pool),
            engine.keys.dispatcher_lock(pool))}
        assert len(slots) == 1
        backlog = await engine.queue.backlog(pool)
        assert (backlog.queued, backlog.in_flight) == (0, 0)
        for worker in workers:
            assert "Traceback" not in worker.log(), worker.log()[-4000:]
    finally:
        first_event.cancel()
        await asyncio.gather(first_event, return_exceptions=True)
        await events.aclose()
        stop(workers)
        await engine.close()
