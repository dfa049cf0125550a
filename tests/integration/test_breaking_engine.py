"""Adversarial tests of the engine: each xfail documents a confirmed defect (see its reason).

Tests without xfail document guarantees that held up under the same kind of pressure.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator

import asyncpg
import pytest
from redis.asyncio import Redis

from conveyor_engine.api import Engine
from conveyor_engine.compiler import WorkflowInvalid
from conveyor_engine.settings import EngineSettings
from conveyor_engine.store import Store
from conveyor_engine.worker.worker import Worker
from conveyor_sandbox import services
from tests.support import counting
from tests.support.polling import eventually
from tests.support.runs import FINAL, finished
from tests.support.workers import WorkerProcess, worker_env

pytestmark = pytest.mark.integration


# -- helpers ------------------------------------------------------------------------------


@pytest.fixture
def counting_server() -> Iterator[tuple[str, dict[str, int]]]:
    """A loopback HTTP server counting requests per path: ``(base url, hits)``."""
    with counting.counting_server() as served:
        yield served


async def settled(engine: Engine, execution_id: str, timeout: float) -> str:
    """The execution's phase once final, or ``"stuck in <phase>: <task phases>"``."""
    try:
        state = await finished(engine, execution_id, timeout=timeout)
        return state.phase
    except AssertionError:
        state = await engine.get(execution_id)
        return f"stuck in {state.phase}: " + ", ".join(
            f"{t.name}={t.phase}" for t in state.tasks)


def one(pool: str, task: dict) -> dict:
    return {"pool": pool, "tasks": [{"name": "only", **task}]}


# -- poison outcomes wedge the committer ------------------------------------------------------


@pytest.mark.parametrize("case", ["nul", "bigint", "deep"])
async def test_unstorable_http_output_does_not_wedge_the_worker(
    engine: Engine, start_workers, httpbin_url: str, pool: str, case: str
) -> None:
    if case == "nul":
        task = {"type": "http", "params": {"url": f"{httpbin_url}/anything?x=%00"}}
    else:
        body = ('{"n": 123456789012345678901234567890}' if case == "bigint"
                else "[" * 300 + "]" * 300)
        task = {"type": "http", "params": {
            "url": f"{httpbin_url}/anything", "method": "POST", "body": body,
            "headers": {"Content-Type": "application/json"}}}
    poison = await engine.register(f"poison-{case}", one(pool, task))
    quick = await engine.register("quick", one(pool, {"type": "set", "params": {"v": 1}}))
    workers = start_workers(1, concurrency=4)
    try:
        bad = await engine.submit(poison)
        good = await engine.submit(quick)
        # Either is acceptable (sanitised output or a clear failure), but both must finish.
        assert await settled(engine, good.execution_id, 20) == "Succeeded"
        assert (await settled(engine, bad.execution_id, 5)) in FINAL
    finally:
        workers[0].kill()  # a wedged committer never drains: SIGTERM would hang for 60 s


# -- an exception after the task ran leaks the slot and strands the task ----------------------


async def test_backoff_too_long_to_schedule_is_refused_at_registration(
    engine: Engine, httpbin_url: str, pool: str
) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        await engine.register("far-retry", one(pool, {
            "type": "http", "params": {"url": f"{httpbin_url}/status/500"},
            "retry": {"limit": 1, "backoff": "100000000h", "maxBackoff": "100000000h"}}))
    assert "retry.backoff: '100000000h' is longer than the limit of 7 days" in str(caught.value)


async def test_error_after_the_task_ran_fails_the_task_and_frees_the_slot(
    engine: Engine, inproc, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every outcome record is built in conveyor_engine.worker.outcome: fail there once.
    from conveyor_engine.worker import outcome as worker_module

    real = worker_module.transition_for
    calls = {"n": 0}

    def flaky_transition(**kwargs: object):
        calls["n"] += 1
        if calls["n"] == 1:
            raise OverflowError("date value out of range")
        return real(**kwargs)

    monkeypatch.setattr(worker_module, "transition_for", flaky_transition)
    make, start = inproc
    worker = await make(concurrency=1)
    start(worker)
    broken = await engine.register("broken", one(pool, {"type": "set", "params": {"v": 1}}))
    quick = await engine.register("quick", one(pool, {"type": "set", "params": {"v": 2}}))
    bad = await engine.submit(broken)
    assert await settled(engine, bad.execution_id, 15) == "Failed"
    assert "internal error: OverflowError" in (await engine.get(bad.execution_id)).task(
        "only").error
    good = await engine.submit(quick)
    assert await settled(engine, good.execution_id, 15) == "Succeeded"


# -- malformed stream entries -------------------------------------------------------------------


async def test_entry_with_a_non_uuid_execution_id_does_not_poison_its_batch(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("neighbour", one(pool, {"type": "set", "params": {"v": 1}}))
    await engine.queue.ensure_group(pool)
    await engine.redis.xadd(engine.keys.stream(pool), {"e": "not-a-uuid", "t": "x", "a": "1"})
    submission = await engine.submit(workflow)
    start_workers(1, lease_seconds=1, max_deliveries=3)  # dispatch grace stays 10 s
    assert await settled(engine, submission.execution_id, 6) == "Succeeded"
    attempts = await engine.attempts(submission.execution_id)
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "Succeeded")]


@pytest.mark.parametrize("fields", [
    {"e": "x"}, {"e": "00000000-0000-0000-0000-000000000000", "t": "a", "a": "one"}, {},
])
async def test_entries_missing_fields_or_unparsable_are_acked_and_dropped(
    engine: Engine, start_workers, pool: str, fields: dict
) -> None:
    workflow = await engine.register("neighbour", one(pool, {"type": "set", "params": {"v": 1}}))
    await engine.queue.ensure_group(pool)
    await engine.redis.xadd(engine.keys.stream(pool), fields or {"junk": ""})
    submission = await engine.submit(workflow)
    start_workers(1)
    assert await settled(engine, submission.execution_id, 15) == "Succeeded"
    await eventually(lambda: engine.queue.backlog(pool),
                     until=lambda b: (b.queued, b.in_flight) == (0, 0), what="an empty stream")


# -- Redis lost ----------------------------------------------------------------------------


@pytest.fixture
async def own_prefix(redis_url: str, database_url: str) -> Iterator[tuple[str, Engine]]:
    """A key prefix of this test only (so it can be "flushed"), with an engine client on it."""
    prefix = f"ct-brk-{secrets.token_hex(4)}"
    client = await Engine.connect(redis_url=redis_url, database_url=database_url,
                                  key_prefix=prefix)
    yield prefix, client
    await client.close()
    services.delete_prefixed_keys(redis_url, prefix)


def _worker(redis_url: str, database_url: str, prefix: str, pool: str, name: str,
            **extra: object) -> WorkerProcess:
    env = worker_env(redis_url=redis_url, database_url=database_url, key_prefix=prefix,
                     pool=pool, **{k: str(v) for k, v in extra.items()})
    worker = WorkerProcess(env, name)
    worker.wait_serving()
    return worker


async def test_redis_flushed_while_a_timer_is_pending_execution_still_finishes(
    own_prefix, redis_url: str, database_url: str, pool: str
) -> None:
    prefix, client = own_prefix
    workflow = await client.register("flushed", {"pool": pool, "tasks": [
        {"name": "pause", "type": "wait", "params": {"duration": "2s"}},
        {"name": "after", "type": "set", "dependsOn": ["pause"], "params": {"v": 1}}]})
    worker = _worker(redis_url, database_url, prefix, pool, "flush",
                     dispatch_grace_seconds=1)
    try:
        submission = await client.submit(workflow)
        await eventually(lambda: client.get(submission.execution_id),
                         until=lambda s: s.task("pause").phase == "Waiting", what="the timer")
        services.delete_prefixed_keys(redis_url, prefix)  # FLUSHALL, for this install
        assert await settled(client, submission.execution_id, 20) == "Succeeded"
    finally:
        worker.terminate()
        print(worker.log()[-3000:])


async def test_redis_flushed_after_a_worker_died_mid_task_execution_still_finishes(
    own_prefix, redis_url: str, database_url: str, httpbin_url: str, pool: str
) -> None:
    prefix, client = own_prefix
    workflow = await client.register("orphan", one(pool, {
        "type": "http", "params": {"url": f"{httpbin_url}/delay/3"},
        "retry": {"limit": 1, "backoff": "100ms"}}))
    doomed = _worker(redis_url, database_url, prefix, pool, "doomed", lease_seconds=2)
    submission = await client.submit(workflow)
    await eventually(lambda: client.get(submission.execution_id),
                     until=lambda s: s.task("only").phase == "Running", what="the claim")
    doomed.kill()
    services.delete_prefixed_keys(redis_url, prefix)
    rescuer = _worker(redis_url, database_url, prefix, pool, "rescuer", lease_seconds=2,
                      dispatch_grace_seconds=1)
    try:
        assert await settled(client, submission.execution_id, 25) == "Succeeded"
    finally:
        rescuer.terminate()
    # Found abandoned in PostgreSQL (Redis lost its entry): the attempt is recorded as lost
    # and counts against retry.limit; the retry is attempt 2.
    attempts = await client.attempts(submission.execution_id)
    assert [(a.attempt, a.outcome, a.reason) for a in attempts] == [
        (1, "Lost", "WorkerLost"), (2, "Succeeded", None)]
    assert "recorded 1 attempt(s) as lost" in rescuer.log()


# -- reclaim takes over work a live worker is running ---------------------------------------------


async def test_stale_duplicate_entry_does_not_rerun_a_task_a_live_worker_is_running(
    engine: Engine, start_workers, counting_server, pool: str
) -> None:
    base, hits = counting_server
    workflow = await engine.register("dup", one(pool, {
        "type": "http", "params": {"url": f"{base}/slow/4"}}))
    submission = await engine.submit(workflow)
    stream, group = engine.keys.stream(pool), engine.keys.group(pool)
    # A worker that read the entry and died before its claim reached PostgreSQL ...
    await engine.redis.xreadgroup(group, "ghost", {stream: ">"}, count=1)
    # ... and the copy the dispatcher re-armed for the task still Ready in PostgreSQL.
    await engine.redis.xadd(stream, {"e": submission.execution_id, "t": "only", "a": "1"})
    # 2 s: under a loaded CI machine a 1 s lease can lapse on a live worker (not promised)
    start_workers(1, lease_seconds=2)
    assert await settled(engine, submission.execution_id, 30) == "Succeeded"
    assert hits == {"/slow/4": 1}


_LOOPS = ("dispatcher", "lease", "control", "committer", "fetch", "reclaim")


# -- in-process worker for fault injection ------------------------------------------------------


@pytest.fixture
async def inproc(redis_url: str, database_url: str, key_prefix: str, pool: str):
    """``make(**settings)`` builds an in-process Worker on the test's pool; run/stopped here."""
    made: list[tuple[Worker, asyncio.Task, Store, Redis]] = []

    async def make(**settings: object) -> Worker:
        cfg = EngineSettings(redis_url=redis_url, database_url=database_url,
                             key_prefix=key_prefix, pool=pool, worker_id="inproc", **settings)
        store = await Store.connect(database_url, apply_migrations=False)
        redis = Redis.from_url(redis_url, decode_responses=True)
        worker = Worker(cfg, store, redis)
        made.append((worker, None, store, redis))  # type: ignore[arg-type]
        return worker

    def start(worker: Worker) -> None:
        for i, (w, _, s, r) in enumerate(made):
            if w is worker:
                made[i] = (w, asyncio.create_task(worker.run()), s, r)

    yield make, start
    for worker, task, store, redis in made:
        worker.stop()
        if task is not None:
            done, _ = await asyncio.wait([task], timeout=30)
            while not done:  # see test_stop_always_ends_an_idle_worker_promptly
                for loop_task in asyncio.all_tasks():
                    if loop_task.get_name() in _LOOPS:
                        loop_task.cancel()
                done, _ = await asyncio.wait([task], timeout=5)
        await store.close()
        await redis.aclose()


async def test_context_load_failure_after_claim_does_not_strand_the_task(
    engine: Engine, inproc, pool: str
) -> None:
    make, start = inproc
    worker = await make(lease_seconds=1.5, concurrency=2)
    real_load, failures = worker.loader.load, []

    async def flaky_load(claims):
        if not failures:
            failures.append(claims)
            raise asyncpg.exceptions.ConnectionDoesNotExistError(
                "connection was closed in the middle of operation")
        return await real_load(claims)

    worker.loader.load = flaky_load
    workflow = await engine.register("blip", one(pool, {"type": "set", "params": {"v": 1}}))
    start(worker)
    submission = await engine.submit(workflow)
    assert await settled(engine, submission.execution_id, 15) == "Succeeded"
    assert failures, "the fault was not injected"


async def test_cancel_arriving_between_claim_and_start_prevents_the_run(
    engine: Engine, inproc, counting_server, pool: str
) -> None:
    base, hits = counting_server
    make, start = inproc
    worker = await make()
    real_load, real_control = worker.loader.load, worker._on_control
    seen = asyncio.Event()

    def on_control(message: dict) -> None:
        real_control(message)
        seen.set()

    async def load_then_cancelled(claims):
        for claim in claims:
            await engine.cancel(claim.ref.execution_id, "cancelled during load")
        await asyncio.wait_for(seen.wait(), 10)
        return await real_load(claims)

    worker._on_control = on_control
    worker.loader.load = load_then_cancelled
    workflow = await engine.register("late-cancel", one(pool, {
        "type": "http", "params": {"url": f"{base}/side-effect"}}))
    start(worker)
    submission = await engine.submit(workflow)
    assert await settled(engine, submission.execution_id, 10) == "Cancelled"
    await eventually(lambda: engine.queue.backlog(pool),
                     until=lambda b: (b.queued, b.in_flight) == (0, 0), what="the ack")
    assert hits == {}


# -- graceful stop ----------------------------------------------------------------------------


async def test_stop_always_ends_an_idle_worker_promptly(
    redis_url: str, database_url: str, key_prefix: str, pool: str
) -> None:
    store = await Store.connect(database_url, apply_migrations=False)
    redis = Redis.from_url(redis_url, decode_responses=True)
    hung = 0
    try:
        for _ in range(40):
            cfg = EngineSettings(redis_url=redis_url, database_url=database_url,
                                 key_prefix=key_prefix, pool=pool, worker_id="stopper",
                                 dispatch_interval_seconds=0.005)
            worker = Worker(cfg, store, redis)
            run = asyncio.create_task(worker.run())
            lock = worker.keys.dispatcher_lock(pool)
            await eventually(lambda: redis.exists(lock),  # noqa: B023
                             what="the dispatcher lock")
            worker.stop()  # what the SIGTERM handler calls
            done, _ = await asyncio.wait([run], timeout=5)
            if not done:
                hung += 1
                for task in asyncio.all_tasks():  # unstick it so the session goes on
                    if task.get_name() in _LOOPS:
                        task.cancel()
                await asyncio.wait([run], timeout=10)
            await redis.delete(worker.keys.dispatcher_lock(pool))
    finally:
        await store.close()
        await redis.aclose()
    assert hung == 0, f"{hung} of 40 stops hung"
