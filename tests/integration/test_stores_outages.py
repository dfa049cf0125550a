"""Outages of Redis and PostgreSQL, with real servers: a black-holed Redis (SIGSTOP) and a
restarted PostgreSQL. The worker logs one line when a dependency goes down and one when it
returns (no traceback per retry), reports not ready in between, exports
``conveyor_dependency_up``, and the work finishes afterwards with each task recorded once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import asyncpg
import pytest

from conveyor_engine.api import Engine
from conveyor_sandbox.services import find_free_port, fresh_database_sync
from conveyor_sandbox.services.private_postgres import PrivatePostgres, private_postgres
from conveyor_sandbox.services.redis_ha import RedisProcess, private_redis
from tests.support.polling import eventually
from tests.support.stores import (
    all_final,
    assert_each_task_recorded_once,
    chain,
    dependency_up,
    probe,
)
from tests.support.workers import WorkerProcess, worker_env

pytestmark = pytest.mark.integration

#: How long the outage lasts once the worker has noticed it: long enough for every loop
#: (fetch each second, dispatcher each 0.25 s, leases, probes) to fail many times over.
OUTAGE_SECONDS = 4.0


@pytest.fixture
def paused_redis() -> Iterator[RedisProcess]:
    with private_redis() as server:
        yield server


@pytest.fixture
def restartable_postgres() -> Iterator[PrivatePostgres]:
    with private_postgres() as server:
        yield server


def start_worker(name: str, **settings: object) -> WorkerProcess:
    worker = WorkerProcess(worker_env(**{k: str(v) for k, v in settings.items()}), name)
    worker.wait_serving()
    return worker


async def test_black_holed_redis_logs_one_line_down_and_one_up_and_readiness_follows(
    paused_redis: RedisProcess, database_url: str, key_prefix: str, pool: str,
) -> None:
    engine = await Engine.connect(redis_url=paused_redis.url, database_url=database_url,
                                  key_prefix=key_prefix)
    port = find_free_port()
    worker = start_worker(
        "w-blackhole", redis_url=paused_redis.url, database_url=database_url,
        key_prefix=key_prefix, pool=pool, metrics_port=port, redis_timeout_seconds=2,
        dependency_check_seconds=0.5, lease_seconds=3)
    try:
        workflow = await engine.register("outage", chain(pool))
        before = await engine.submit(workflow)
        await all_final(engine, [before.execution_id], timeout=30)
        status, metrics = await probe(port)
        assert status == 200 and dependency_up(metrics, "redis") == 1.0

        paused_redis.pause()  # a black hole: connections stay open, nothing answers
        try:
            await eventually(lambda: probe(port), until=lambda r: r[0] == 503, timeout=20,
                             what="/readyz to answer 503 during the outage")
            await eventually(lambda: probe(port),
                             until=lambda r: dependency_up(r[1], "redis") == 0.0, timeout=5,
                             what="conveyor_dependency_up{redis} to be 0")
            await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself, not a wait for a result
            assert (await probe(port))[0] == 503
        finally:
            paused_redis.resume()

        await eventually(lambda: probe(port), until=lambda r: r[0] == 200, timeout=30,
                         what="/readyz to answer 200 after the outage")
        assert dependency_up((await probe(port))[1], "redis") == 1.0
        after = await engine.submit(workflow)  # work continues
        await all_final(engine, [after.execution_id], timeout=30)
        await assert_each_task_recorded_once(engine, [before.execution_id,
                                                      after.execution_id], 3)
        log = worker.log()
        assert log.count("redis is unreachable") == 1, log[-4000:]
        assert log.count("redis is reachable again") == 1, log[-4000:]
        assert "Traceback" not in log, log[-4000:]
    finally:
        worker.terminate()
        print(worker.log()[-3000:])
        await engine.close()


@pytest.mark.slow
async def test_postgres_restart_mid_run_is_survived_by_reconnecting(
    restartable_postgres: PrivatePostgres, redis_url: str, key_prefix: str, pool: str,
    httpbin_url: str,
) -> None:
    with fresh_database_sync(restartable_postgres.url, "conveyor_restart") as database_url:
        engine = await Engine.connect(redis_url=redis_url, database_url=database_url,
                                      key_prefix=key_prefix)
        port = find_free_port()
        worker = start_worker(
            "w-pgrestart", redis_url=redis_url, database_url=database_url,
            key_prefix=key_prefix, pool=pool, metrics_port=port, database_timeout_seconds=5,
            dependency_check_seconds=0.5, lease_seconds=3, dispatch_grace_seconds=1)
        try:
            workflow = await engine.register("restart", chain(pool, httpbin_url, length=4))
            ids = [(await engine.submit(workflow)).execution_id for _ in range(12)]
            await eventually(lambda: engine.attempts(ids[0]), timeout=30,
                             what="the first attempt to be recorded")  # mid-run
            await asyncio.to_thread(restartable_postgres.restart)  # every session dropped
            more = [(await engine.submit(workflow)).execution_id
                    for _ in range(3)] if await _reconnected(database_url) else []
            phases = await all_final(engine, ids + more, timeout=60)
            assert set(phases.values()) == {"Succeeded"}, phases
            await assert_each_task_recorded_once(engine, ids + more, 4)
            _, metrics = await eventually(
                lambda: probe(port), until=lambda r: r[0] == 200, timeout=30,
                what="/readyz to answer 200 after the restart")
            assert dependency_up(metrics, "postgres") == 1.0
            log = worker.log()
            # Each outage seen is reported once when it starts and once when it ends.
            assert log.count("postgres is unreachable") == log.count(
                "postgres is reachable again"), log[-4000:]
            assert "Traceback" not in log, log[-4000:]
        finally:
            worker.terminate()
            print(worker.log()[-3000:])
            await engine.close()


async def test_postgres_outage_logs_one_line_down_and_one_up_and_readiness_follows(
    restartable_postgres: PrivatePostgres, redis_url: str, key_prefix: str, pool: str,
) -> None:
    """A PostgreSQL cut (stopped for a few seconds, then started): one line each way, no
    traceback per retry (the issue counted 106 in a 20 s cut), readiness and the gauge
    follow, and work submitted before the cut finishes after it."""
    with fresh_database_sync(restartable_postgres.url, "conveyor_cut") as database_url:
        engine = await Engine.connect(redis_url=redis_url, database_url=database_url,
                                      key_prefix=key_prefix)
        port = find_free_port()
        worker = start_worker(
            "w-pgcut", redis_url=redis_url, database_url=database_url, key_prefix=key_prefix,
            pool=pool, metrics_port=port, database_timeout_seconds=2,
            dependency_check_seconds=0.5, lease_seconds=3, dispatch_grace_seconds=1)
        try:
            workflow = await engine.register("cut", {"pool": pool, "tasks": [
                {"name": "t0", "type": "wait", "params": {"duration": "2s"}},
                {"name": "t1", "type": "set", "dependsOn": ["t0"], "params": {"v": 1}},
            ]})
            ids = [(await engine.submit(workflow)).execution_id for _ in range(3)]
            await asyncio.to_thread(restartable_postgres.stop)
            try:
                await eventually(lambda: probe(port), until=lambda r: r[0] == 503, timeout=20,
                                 what="/readyz to answer 503 while PostgreSQL is down")
                assert dependency_up((await probe(port))[1], "postgres") == 0.0
                await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
            finally:
                await asyncio.to_thread(restartable_postgres.start)
            await eventually(lambda: probe(port), until=lambda r: r[0] == 200, timeout=30,
                             what="/readyz to answer 200 after PostgreSQL is back")
            assert await _reconnected(database_url)
            phases = await all_final(engine, ids, timeout=60)
            assert set(phases.values()) == {"Succeeded"}, phases
            log = worker.log()
            assert log.count("postgres is unreachable") == 1, log[-4000:]
            assert log.count("postgres is reachable again") == 1, log[-4000:]
            assert "Traceback" not in log, log[-4000:]
        finally:
            worker.terminate()
            print(worker.log()[-3000:])
            await engine.close()


async def test_black_holed_postgres_is_noticed_by_the_statement_timeout(
    restartable_postgres: PrivatePostgres, redis_url: str, key_prefix: str, pool: str,
) -> None:
    """Every PostgreSQL process SIGSTOPped: no error ever arrives by itself, so only the
    statement and connect timeouts reveal the outage; one line each way, readiness follows,
    and the work waiting across the outage finishes after it."""
    with fresh_database_sync(restartable_postgres.url, "conveyor_hole") as database_url:
        engine = await Engine.connect(redis_url=redis_url, database_url=database_url,
                                      key_prefix=key_prefix)
        port = find_free_port()
        worker = start_worker(
            "w-pghole", redis_url=redis_url, database_url=database_url, key_prefix=key_prefix,
            pool=pool, metrics_port=port, database_timeout_seconds=2,
            dependency_check_seconds=0.5, lease_seconds=3, dispatch_grace_seconds=1)
        try:
            workflow = await engine.register("hole", {"pool": pool, "tasks": [
                {"name": "t0", "type": "wait", "params": {"duration": "1s"}},
                {"name": "t1", "type": "set", "dependsOn": ["t0"], "params": {"v": 1}},
            ]})
            ids = [(await engine.submit(workflow)).execution_id for _ in range(3)]
            restartable_postgres.pause()
            try:
                await eventually(lambda: probe(port), until=lambda r: r[0] == 503, timeout=20,
                                 what="/readyz to answer 503 while PostgreSQL is black-holed")
                assert dependency_up((await probe(port))[1], "postgres") == 0.0
                await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
            finally:
                restartable_postgres.resume()
            await eventually(lambda: probe(port), until=lambda r: r[0] == 200, timeout=30,
                             what="/readyz to answer 200 after the black hole")
            phases = await all_final(engine, ids, timeout=60)
            assert set(phases.values()) == {"Succeeded"}, phases
            log = worker.log()
            assert log.count("postgres is unreachable") == 1, log[-4000:]
            assert log.count("postgres is reachable again") == 1, log[-4000:]
            assert "Traceback" not in log, log[-4000:]
        finally:
            worker.terminate()
            print(worker.log()[-3000:])
            await engine.close()


async def _reconnected(database_url: str, timeout: float = 30.0) -> bool:
    """Poll until PostgreSQL accepts connections again after the restart."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(database_url, timeout=2)
            await conn.close()
            return True
        except Exception:
            await asyncio.sleep(0.1)
    raise AssertionError("the test's client did not reconnect to PostgreSQL")


async def test_engine_statements_time_out_on_a_black_holed_postgres(
    restartable_postgres: PrivatePostgres, redis_url: str, key_prefix: str,
) -> None:
    """``Engine.connect`` (what the operator and programs use) bounds every statement and
    connect by ``CONVEYOR_DATABASE_TIMEOUT_SECONDS``: with every PostgreSQL process
    SIGSTOPped a call raises within about that time, on the pool's open connection and on
    a new one, instead of blocking its caller (an operator handler) forever."""
    with fresh_database_sync(restartable_postgres.url, "conveyor_stall") as database_url:
        engine = await Engine.connect(redis_url=redis_url, database_url=database_url,
                                      key_prefix=key_prefix, database_timeout_seconds=1)
        calls: list[asyncio.Task] = []
        try:
            assert await engine.find("no-such-key") is None  # a statement, answered
            restartable_postgres.pause()
            try:
                for which in ("the pool's open connection", "a new connection"):
                    started = time.monotonic()
                    call = asyncio.ensure_future(engine.find("no-such-key"))
                    calls.append(call)
                    done, _ = await asyncio.wait({call}, timeout=10)
                    assert done, f"a statement on {which} blocked on a black-holed PostgreSQL"
                    took = time.monotonic() - started
                    with pytest.raises((TimeoutError, OSError, asyncpg.InterfaceError,
                                        asyncpg.PostgresError)):
                        call.result()
                    assert took < 5, f"{which}: {took:.1f}s with a 1 s timeout"
            finally:
                restartable_postgres.resume()
            found = await eventually(lambda: _find_or_error(engine), until=lambda r: r is None,
                                     timeout=30, what="the engine to reach PostgreSQL again")
            assert found is None
        finally:
            for call in calls:
                call.cancel()
            await engine.close()


async def _find_or_error(engine: Engine) -> object:
    try:
        return await engine.find("no-such-key")
    except Exception as exc:  # still reconnecting
        return exc
