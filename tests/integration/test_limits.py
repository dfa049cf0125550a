"""Limits and timeouts (issue 9, items 3, 4 and 6) with real workers, Redis and PostgreSQL.

Each test names the defect it reproduces; docs/guarantees.md ("Limits and timeouts") names
these tests as the checks of its promises.
"""

from __future__ import annotations

import asyncio
import secrets
import time

import pytest

from conveyor_engine import api as api_module
from conveyor_engine.api import CompiledWorkflow, Engine, InvalidInputs
from conveyor_engine.settings import EngineSettings
from tests.support.runs import finished

pytestmark = pytest.mark.integration


# -- item 3: the task's timeout governs an http call, not a hidden client timeout ----------

async def test_http_task_timeout_longer_than_the_client_default_is_honoured(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    """Before: the worker's client had a fixed 60 s timeout that cut short any call with a
    longer task ``timeout`` (ReadTimeout after 60 s with ``timeout: 1h``). The client
    default is now ``CONVEYOR_HTTP_TIMEOUT_SECONDS``, here 2 s, and a task's own timeout
    replaces it: a 4 s answer is accepted under ``timeout: 20s`` and still cut at 2 s
    without one."""
    workflow = await engine.register("slow-http", {"pool": pool, "tasks": [
        {"name": "patient", "type": "http", "timeout": "20s",
         "params": {"url": f"{httpbin_url}/delay/4"}},
        {"name": "default", "type": "http", "params": {"url": f"{httpbin_url}/delay/4"}},
    ]})
    start_workers(1, http_timeout_seconds=2)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.task("patient").phase == "Succeeded", state.task("patient").error
    assert state.task("patient").outputs["statusCode"] == 200
    assert state.task("default").phase == "Failed"
    assert "ReadTimeout" in state.task("default").error


# -- item 4: compiled workflows are kept in a bounded cache --------------------------------

async def test_compiled_workflow_cache_is_bounded_and_reloads_what_it_dropped(
    engine: Engine, pool: str
) -> None:
    """Before: every compiled version was kept in process memory forever."""
    small = Engine(engine.store, engine.redis, engine.keys,
                   settings=EngineSettings.model_construct(workflow_cache_size=2))
    first, second, third = [
        await small.register(f"lru-{i}", {"pool": pool, "tasks": [
            {"name": "a", "type": "set", "params": {"i": i, "salt": secrets.token_hex(4)}}]})
        for i in range(3)]
    catalog = small.catalog
    assert len(catalog) == 2
    assert first.content_hash not in catalog
    assert second.content_hash in catalog and third.content_hash in catalog
    # Dropped from memory, not lost: compiled again from Redis (or PostgreSQL).
    again = await small.workflow(first.content_hash, "lru-0")
    assert again.content_hash == first.content_hash and list(again.tasks) == ["a"]
    assert len(catalog) == 2 and first.content_hash in catalog
    assert second.content_hash not in catalog  # the least recently used went


# -- item 6: size limits on inputs, set outputs and http bodies ----------------------------

async def test_inputs_over_the_limit_are_refused_naming_size_and_limit(
    engine: Engine, pool: str
) -> None:
    """Before: a 10 MB input was accepted and copied into PostgreSQL and twice into Redis."""
    workflow = await engine.register("big-inputs", {"pool": pool, "inputs": [
        {"name": "blob"}, {"name": "n", "default": 1}], "tasks": [
        {"name": "a", "type": "set", "params": {"b": "${{ size(inputs.blob) }}"}}]})
    key = f"too-big-{secrets.token_hex(4)}"
    with pytest.raises(InvalidInputs) as info:
        await engine.submit(workflow, {"blob": "x" * (10 * 1024 * 1024)}, idempotency_key=key)
    assert str(info.value) == (
        "inputs: 10485777 bytes as JSON, more than the limit of 1048576 bytes "
        "(CONVEYOR_MAX_INPUTS_BYTES); the largest is inputs.blob (10485762 bytes)")
    assert await engine.find(key) is None  # nothing was recorded
    small = Engine(engine.store, engine.redis, engine.keys,
                   settings=EngineSettings.model_construct(max_inputs_bytes=2048))
    with pytest.raises(InvalidInputs, match="more than the limit of 2048 bytes"):
        await small.submit(workflow, {"blob": "y" * 3000})
    assert (await small.submit(workflow, {"blob": "y" * 1000})).created


async def test_set_outputs_over_the_cap_fail_the_task_without_retries(
    engine: Engine, start_workers, pool: str
) -> None:
    """Before: ``set`` outputs had no cap at all."""
    workflow = await engine.register("big-set", {"pool": pool, "inputs": [{"name": "blob"}],
                                                 "tasks": [
        {"name": "shape", "type": "set", "retry": {"limit": 3, "backoff": "0s"},
         "params": {"copy": "${{ inputs.blob }}"}},
        {"name": "after", "type": "set", "dependsOn": ["shape"], "params": {}}]})
    start_workers(1, max_output_bytes=2048)
    sub = await engine.submit(workflow, {"blob": "z" * 3000})
    state = await finished(engine, sub.execution_id)
    assert state.phase == "Failed"
    assert state.task("shape").error == (
        "outputs are 3011 bytes as JSON, more than the limit of 2048 bytes per task "
        "(CONVEYOR_MAX_OUTPUT_BYTES); the largest is params.copy (3002 bytes)")
    assert state.task("after").phase == "Skipped"
    attempts = [a for a in await engine.attempts(sub.execution_id) if a.task == "shape"]
    assert len(attempts) == 1  # not retryable: the same params render the same way


async def test_truncated_json_body_fails_visibly_unless_allowed(
    engine: Engine, start_workers, httpbin_url: str, pool: str
) -> None:
    """Before: a JSON body over the cap left the task Succeeded with only ``text``, and
    the downstream ``outputs.json`` read failed as "no such key" in another task."""
    payload = {"items": ["x" * 100] * 40}  # echoed back by httpbin: over 4 KB of JSON
    call = {"url": f"{httpbin_url}/anything", "method": "POST", "json": payload,
            "maxResponseBytes": 1024}
    workflow = await engine.register("truncated", {"pool": pool, "tasks": [
        {"name": "strict", "type": "http", "params": call},
        {"name": "use", "type": "set", "dependsOn": ["strict"],
         "params": {"n": "${{ size(tasks.strict.outputs.json.json.items) }}"}},
        {"name": "lenient", "type": "http", "params": {**call, "allowTruncated": True}},
        {"name": "check", "type": "set", "dependsOn": ["lenient"],
         "params": {"cut": "${{ tasks.lenient.outputs.truncated }}",
                    "n": "${{ size(tasks.lenient.outputs.text) }}"}}]})
    start_workers(1)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    strict = state.task("strict")
    assert strict.phase == "Failed"
    assert "is larger than the cap of 1024 bytes (params.maxResponseBytes)" in strict.error
    assert "params.allowTruncated: true" in strict.error
    assert state.task("use").phase == "Skipped"
    assert state.task("lenient").phase == "Succeeded"
    assert state.task("check").outputs == {"cut": True, "n": 1024}


async def _ticks_while(awaitable, interval: float = 0.05) -> tuple[object, int]:
    """Run ``awaitable`` while a ticker counts how often the event loop let it run."""
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(interval)
            ticks += 1

    counting = asyncio.create_task(ticker())
    try:
        result = await awaitable
    finally:
        counting.cancel()
    return result, ticks


async def test_compiling_never_blocks_the_event_loop(
    engine: Engine, pool: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: workers and the operator compiled on the event loop, so a worker compiling
    a large workflow stopped renewing its leases. A compile made to take 1 s (patched)
    must leave the loop free: a 50 ms ticker keeps ticking through it."""
    small = Engine(engine.store, engine.redis, engine.keys,
                   settings=EngineSettings.model_construct(workflow_cache_size=1))
    spec = {"pool": pool, "tasks": [{"name": "a", "type": "set",
                                     "params": {"salt": secrets.token_hex(4)}}]}
    first = await small.register("slow-compile-a", spec)
    await small.register("slow-compile-b", {**spec, "pool": pool + "b"})
    assert first.content_hash not in small.catalog

    def slowly(original):
        def compile_slowly(*args, **kwargs):
            time.sleep(1.0)  # a blocking compile, as a 10,000-task one would be
            return original(*args, **kwargs)
        return compile_slowly

    monkeypatch.setattr(CompiledWorkflow, "from_json",
                        staticmethod(slowly(CompiledWorkflow.from_json)))
    loaded, ticks = await _ticks_while(small.workflow(first.content_hash, "slow-compile-a"))
    assert loaded.content_hash == first.content_hash
    assert ticks >= 10, f"the event loop ran only {ticks} times in a 1 s worker-side compile"

    monkeypatch.setattr(api_module, "compile_workflow", slowly(api_module.compile_workflow))
    _, ticks = await _ticks_while(small.register("slow-compile-c", {**spec, "pool": pool}))
    assert ticks >= 10, f"the event loop ran only {ticks} times in a 1 s register"
