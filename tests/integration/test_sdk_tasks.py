"""SDK task types with real worker processes, Redis and PostgreSQL (issue 11 item 1).

The example package (``examples/tasktypes``, installed into .venv) runs to Succeeded; the
test types of :mod:`tests.support.sdk_tasks` are installed into the workers as a
distribution written on the fly and registered in this process for the compiler.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from conveyor_engine import tasktypes
from conveyor_engine.api import Engine
from conveyor_engine.compiler import WorkflowInvalid
from conveyor_engine.tasktypes.registry import Provider
from tests.support import sdk_tasks
from tests.support.polling import eventually
from tests.support.runs import finished
from tests.support.workers import WorkerProcess, worker_env

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The test types: in this process's registry (the compiler) and on disk (workers)."""
    registry = tasktypes.load()
    for name, obj in sdk_tasks.TYPES.items():
        if name not in registry:
            registry.register(getattr(sdk_tasks, obj), Provider(f"{name} = tests.support"))
    return sdk_tasks.install_into(tmp_path_factory.mktemp("sdk-dist"))


@pytest.fixture
def sdk_workers(engine: Engine, redis_url: str, database_url: str, key_prefix: str,
                pool: str, installed: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """``sdk_workers(**settings)``: one worker of the test's pool with the test types."""
    started: list[WorkerProcess] = []

    def start(**settings: object) -> WorkerProcess:
        env = worker_env(redis_url=redis_url, database_url=database_url,
                         key_prefix=key_prefix, pool=pool, **settings)
        env["PYTHONPATH"] = os.pathsep.join([str(installed), str(ROOT)])
        worker = WorkerProcess(env, f"sdk{len(started)}")
        started.append(worker)
        worker.wait_serving()
        return worker

    yield start
    for worker in started:
        worker.terminate()
        print(f"--- {worker.log_path}\n{worker.log()[-3000:]}")




async def test_the_example_package_runs_with_a_real_worker(
        engine: Engine, sdk_workers, pool: str) -> None:
    workflow = await engine.register("example-tasks", {"pool": pool, "tasks": [
        {"name": "digest", "type": "checksum", "params": {"text": "hello", "algorithm": "md5"}},
        {"name": "count", "type": "word-count", "dependsOn": ["digest"],
         "params": {"text": "${{ tasks.digest.outputs.digest }} and more", "top": 1}}]})
    sdk_workers()
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Succeeded", state
    assert state.task("digest").outputs == {
        "algorithm": "md5", "bytes": 5, "digest": "5d41402abc4b2a76b9719d911017c592"}
    assert state.task("count").outputs["words"] == 3


async def test_a_typo_in_a_custom_param_is_refused_at_compile_time(engine: Engine) -> None:
    with pytest.raises(WorkflowInvalid) as raised:
        await engine.register("typo", {"tasks": [
            {"name": "digest", "type": "checksum", "params": {"txt": "hello"}}]})
    message = str(raised.value)
    assert "digest" in message and "params.txt" in message
    assert "did you mean" in message.lower() and "text" in message


async def test_typed_errors_decide_retries_and_their_delay(
        engine: Engine, sdk_workers, pool: str) -> None:
    retry = {"limit": 3, "backoff": "50ms", "jitter": "None"}
    workflow = await engine.register("typed-errors", {"pool": pool, "tasks": [
        {"name": "refused", "type": "sdk-test.refuse", "retry": retry},
        {"name": "flaky", "type": "sdk-test.flaky", "params": {"seconds": 1.5},
         "retry": {**retry, "retryOn": ["RetryableError"]}}]})
    sdk_workers(dispatch_interval_seconds=0.05)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    refused, flaky = state.task("refused"), state.task("flaky")
    assert (refused.phase, refused.attempt) == ("Failed", 1)
    assert "(not retryable)" in refused.message and "declined on attempt 1" in refused.message
    assert (flaky.phase, flaky.attempt) == ("Succeeded", 2)
    assert flaky.outputs == {"attempt": 2, "key": f"{state.execution_id}/flaky"}
    attempts = [a for a in await engine.attempts(state.execution_id) if a.task == "flaky"]
    gap = (attempts[1].started_at - attempts[0].finished_at).total_seconds()
    assert 1.4 <= gap < 6.0, gap  # the requested 1.5 s, not the 50 ms backoff


async def test_a_long_task_heartbeats_past_the_lease_and_is_interrupted_by_cancel(
        engine: Engine, sdk_workers, pool: str, tmp_path: Path) -> None:
    done_marker, cut_marker = tmp_path / "done", tmp_path / "cut"
    workflow = await engine.register("long", {"pool": pool, "tasks": [
        {"name": "long", "type": "sdk-test.long",
         "params": {"seconds": 4, "marker": str(done_marker)}},
        {"name": "cut", "type": "sdk-test.long", "dependsOn": ["long"],
         "params": {"seconds": 120, "marker": str(cut_marker)}}]})
    # lease 1 s: the 4 s task outlives four leases; a takeover would show as a second attempt
    sdk_workers(lease_seconds=1, dispatch_interval_seconds=0.05)
    sdk_workers(lease_seconds=1, dispatch_interval_seconds=0.05)
    execution_id = (await engine.submit(workflow)).execution_id
    await eventually(lambda: engine.get(execution_id),
                     until=lambda s: s.task("cut").phase == "Running", timeout=60,
                     what="the second task to run")
    state = await engine.get(execution_id)
    assert state is not None and state.task("long").phase == "Succeeded"
    assert state.task("long").outputs["beats"] >= 30
    attempts = await engine.attempts(execution_id)
    assert [(a.task, a.attempt, a.outcome) for a in attempts] == [("long", 1, "Succeeded")]
    assert done_marker.read_text().split() == ["started"]
    await eventually(lambda: _read(cut_marker), until=lambda t: "started" in t,
                     what="the second task to start")
    cancelled_at = time.monotonic()
    assert await engine.cancel(execution_id, reason="deleted by the test")
    await eventually(lambda: _read(cut_marker), until=lambda t: "cancelled" in t, timeout=10,
                     what="the running function to be interrupted")
    assert time.monotonic() - cancelled_at < 5
    final = await finished(engine, execution_id)
    assert final.phase == "Cancelled"


async def test_a_plain_function_runs_and_is_told_of_cancellation(
        engine: Engine, sdk_workers, pool: str, tmp_path: Path) -> None:
    quick, slow = tmp_path / "quick", tmp_path / "slow"
    workflow = await engine.register("plain", {"pool": pool, "tasks": [
        {"name": "quick", "type": "sdk-test.plain",
         "params": {"seconds": 0.1, "marker": str(quick)}},
        {"name": "slow", "type": "sdk-test.plain", "dependsOn": ["quick"],
         "params": {"seconds": 120, "marker": str(slow)}}]})
    sdk_workers(dispatch_interval_seconds=0.05)
    execution_id = (await engine.submit(workflow)).execution_id
    await eventually(lambda: _read(slow), until=lambda t: "started" in t, timeout=60,
                     what="the slow plain function to start")
    state = await engine.get(execution_id)
    assert state is not None and state.task("quick").outputs == {"waited": 0.1}
    cancelled_at = time.monotonic()
    assert await engine.cancel(execution_id)
    await eventually(lambda: _read(slow), until=lambda t: "told" in t, timeout=10,
                     what="the plain function to be told")
    assert time.monotonic() - cancelled_at < 5
    assert (await finished(engine, execution_id)).phase == "Cancelled"


async def test_as_many_plain_functions_run_at_once_as_the_worker_has_slots(
        engine: Engine, sdk_workers, pool: str) -> None:
    # More than the event loop's default executor has threads (min(32, cpus + 4)): each
    # function returns only when all have started, so a smaller thread pool fails them.
    parties = (os.cpu_count() or 1) + 8
    meeting = {"barrier": f"{pool}-slots", "parties": parties, "seconds": 60}
    workflow = await engine.register("meet", {"pool": pool, "tasks": [
        {"name": f"m{i}", "type": "sdk-test.meet", "params": meeting}
        for i in range(parties)]})
    sdk_workers(concurrency=parties)
    state = await finished(engine, (await engine.submit(workflow)).execution_id, timeout=120)
    assert state.phase == "Succeeded", [(t.name, t.phase, t.message) for t in state.tasks]
    assert sorted(state.task(f"m{i}").outputs["arrived"] for i in range(parties)) == \
        list(range(parties))


async def test_a_broken_entry_point_stops_worker_start_up(
        redis_url: str, database_url: str, key_prefix: str, pool: str, tmp_path: Path) -> None:
    (tmp_path / "broken_tasks.py").write_text("raise RuntimeError('missing licence key')\n")
    sdk_tasks.install_into(tmp_path, {"broken": "broken_tasks:thing"}, name="broken-tasks")
    env = worker_env(redis_url=redis_url, database_url=database_url, key_prefix=key_prefix,
                     pool=pool)
    env["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(ROOT)])
    worker = WorkerProcess(env, "broken")
    code = worker.proc.wait(timeout=60)
    log = worker.log()
    assert code == 2, log
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1, log
    assert ("cannot start: a task type failed to load: entry point 'broken = "
            "broken_tasks:thing' (broken-tasks 0.1): importing module 'broken_tasks' failed: "
            "RuntimeError: missing licence key") in errors[0]
    assert "serving pool" not in log


async def _read(path: Path) -> str:
    """The marker file's text ("" before the function wrote it): a tiny local read."""
    return _read_now(str(path))


def _read_now(path: str) -> str:
    return Path(path).read_text() if os.path.exists(path) else ""


async def test_secrets_reach_sdk_and_set_tasks_and_are_stored_redacted(
        engine: Engine, sdk_workers, pool: str, tmp_path: Path, redis_url: str,
        key_prefix: str) -> None:
    token = "tok-" + os.urandom(12).hex()
    (tmp_path / "payments").mkdir()
    (tmp_path / "payments" / "token").write_text(token)
    marker = "[redacted secret payments.token]"
    workflow = await engine.register("secretive", {"pool": pool, "tasks": [
        {"name": "sdk", "type": "sdk-test.secret"},
        {"name": "copy", "type": "set", "params": {"v": "${{ secrets.payments.token }}"}},
        {"name": "after", "type": "set", "dependsOn": ["sdk", "copy"],
         "params": {"v": "${{ tasks.copy.outputs.v }}"}}]})
    sdk_workers(secrets_dir=str(tmp_path))
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Succeeded", state
    assert state.task("sdk").outputs == {"echo": f"got {marker}", "length": len(token)}
    assert state.task("copy").outputs == {"v": marker}
    assert state.task("after").outputs == {"v": marker}  # read back from the store/cache
    redis = Redis.from_url(redis_url)
    read = {"string": redis.get, "hash": redis.hgetall, "stream": redis.xrange,
            "list": lambda k: redis.lrange(k, 0, -1), "set": redis.smembers,
            "zset": lambda k: redis.zrange(k, 0, -1)}
    stored = []
    async for key in redis.scan_iter(match=f"{key_prefix}*"):
        stored.append(repr(await read[(await redis.type(key)).decode()](key)))
    await redis.aclose()
    assert any(marker in s for s in stored)  # the outputs cache
    assert not any(token in s for s in stored)


async def test_what_task_code_prints_or_warns_is_redacted_in_the_worker_output(
        engine: Engine, sdk_workers, pool: str, tmp_path: Path) -> None:
    """A plain and an async function print the secret to stdout (once in two writes) and
    stderr and warn with it: the process's output holds only markers."""
    token = "tok-" + os.urandom(12).hex()
    (tmp_path / "payments").mkdir()
    (tmp_path / "payments" / "token").write_text(token)
    marker = "[redacted secret payments.token]"
    workflow = await engine.register("noisy", {"pool": pool, "tasks": [
        {"name": "plain", "type": "sdk-test.noisy"},
        {"name": "async", "type": "sdk-test.noisy-async"}]})
    worker = sdk_workers(secrets_dir=str(tmp_path))
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Succeeded", state
    lines = [f"{what} token {marker} ({how})" for how in ("plain", "async")
             for what in ("stdout", "split", "stderr", "warn")]
    log = await eventually(lambda: _read(worker.log_path),
                           until=lambda text: all(line in text for line in lines),
                           timeout=10, what="the worker's output to show every line")
    assert token not in log and token[5:] not in log
    assert "UserWarning" in log
