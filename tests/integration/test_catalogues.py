"""Pools' catalogues with real worker processes, Redis and PostgreSQL (issue 11 item 2):
a worker advertises its task types for its pool, withdraws them when it stops, a killed
worker's entry expires, the last known catalogue stays, and the compiler checks workflows
against what the pool advertises."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor_engine import tasktypes
from conveyor_engine.api import Engine, PoolCatalogue, TaskTypesUnavailable, WorkflowInvalid
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


async def catalogue(engine: Engine, pool: str) -> PoolCatalogue:
    return (await engine.pool_catalogues([pool]))[pool]


async def test_a_worker_advertises_its_types_until_it_stops(engine: Engine, start_workers,
                                                              pool: str) -> None:
    assert (await catalogue(engine, pool)).workers == 0
    [worker] = start_workers(1)
    seen = await eventually(lambda: catalogue(engine, pool), until=lambda c: c.workers == 1,
                            timeout=10, what="the worker's advertisement")
    types = {t.name: t for t in seen.types}
    assert {"checksum", "word-count", "http", "set", "wait"} <= set(types)
    count = types["word-count"]
    assert (count.package, count.version) == ("conveyor-example-tasks", "0.1.0")
    local = tasktypes.registry().entry("word-count").describe()
    assert count.params_schema == local["paramsSchema"]
    assert types["checksum"].params_schema["properties"]["chunkBytes"]["maximum"] == 16777216
    assert types["set"].package == "conveyor"

    worker.terminate()
    gone = await catalogue(engine, pool)
    assert gone.workers == 0 and gone.types == ()  # withdrawn at once on a clean stop
    assert {t.name for t in gone.last_known} == set(types)  # ... but remembered
    assert {t.name for t in gone.effective} == set(types)


async def test_a_killed_workers_advertisement_expires(engine: Engine, start_workers,
                                                      pool: str) -> None:
    [worker] = start_workers(1, lease_seconds=2)
    await eventually(lambda: catalogue(engine, pool), until=lambda c: c.workers == 1,
                     timeout=10, what="the worker's advertisement")
    worker.kill()
    await eventually(lambda: catalogue(engine, pool), until=lambda c: c.workers == 0,
                     timeout=10, what="the killed worker's advertisement to expire")


def secrets_dir(root: Path, **secrets: str) -> str:
    """A mounted-Secrets directory with one ``token`` key per Secret."""
    for name, value in secrets.items():
        (root / name).mkdir()
        (root / name / "token").write_text(value)
    return str(root)


async def test_workflows_compile_against_what_the_pool_advertises(
        engine: Engine, start_workers, pool: str, tmp_path: Path) -> None:
    start_workers(1, secrets_dir=secrets_dir(tmp_path, payments="tok-payments-1"))
    seen = await eventually(lambda: catalogue(engine, pool), until=lambda c: c.workers == 1,
                            timeout=10, what="the worker's advertisement")
    facts = {pool: seen.facts(settled=True, secrets=["payments"])}

    good = await engine.register("ns/good", {"pool": pool, "tasks": [
        {"name": "count", "type": "word-count", "params": {"text": "a b", "top": 1}},
        {"name": "pay", "type": "set",
         "params": {"values": {"t": "${{ secrets.payments.token }}"}}}]}, pools=facts)
    assert list(good.tasks) == ["count", "pay"]

    with pytest.raises(WorkflowInvalid) as typo:
        await engine.register("ns/typo", {"pool": pool, "tasks": [
            {"name": "count", "type": "word-count", "params": {"text": "a", "tpo": 1}}]},
            pools=facts)
    assert [str(p) for p in typo.value.problems] == [
        f'task "count": params.tpo: unknown parameter for type "word-count" advertised by '
        f'pool "{pool}" (known: text, top); did you mean "top"?']

    with pytest.raises(WorkflowInvalid) as unknown:
        await engine.register("ns/unknown", {"pool": pool, "tasks": [
            {"name": "zip", "type": "compress", "params": {}}]}, pools=facts)
    [problem] = unknown.value.problems
    assert problem.task == "zip" and problem.field == "type"
    assert problem.message.startswith(f'unknown task type "compress" in pool "{pool}"; '
                                      f"{pool} serves: checksum, http, set, wait, word-count")

    with pytest.raises(WorkflowInvalid) as secret:
        await engine.register("ns/secret", {"pool": pool, "tasks": [
            {"name": "call", "type": "set",
             "params": {"values": {"t": "${{ secrets.billing.token }}"}}}]}, pools=facts)
    assert [str(p) for p in secret.value.problems] == [
        f"task \"call\": params.values.t: reads secret 'billing', which pool '{pool}' does "
        f"not mount (spec.secrets)"]


async def test_a_secret_waits_until_every_live_worker_has_mounted_it(
        engine: Engine, start_workers, pool: str, tmp_path: Path) -> None:
    """Listed in the pool's spec but not mounted by the live worker (a pod older than the
    spec): the workflow waits, naming the Secret and the pool; while an old and a new worker
    both live it still waits; with only the new one it compiles. Names only are stored."""
    spec = {"pool": pool, "tasks": [
        {"name": "pay", "type": "set",
         "params": {"values": {"t": "${{ secrets.payments.token }}"}}}]}

    async def facts(workers: int) -> dict:
        seen = await eventually(lambda: catalogue(engine, pool),
                                until=lambda c: c.workers == workers, timeout=10,
                                what=f"{workers} advertising workers")
        return {pool: seen.facts(settled=True, secrets=["payments"])}

    [old] = start_workers(1)
    with pytest.raises(TaskTypesUnavailable) as waiting:
        await engine.register("ns/pay", spec, pools=await facts(1))
    assert str(waiting.value) == (f"not every running worker of pool '{pool}' has secret "
                                  f"'payments' mounted yet (task 'pay')")
    start_workers(1, secrets_dir=secrets_dir(tmp_path, payments="tok-payments-2"))
    with pytest.raises(TaskTypesUnavailable):
        await engine.register("ns/pay", spec, pools=await facts(2))
    old.terminate()
    settled = await facts(1)
    assert settled[pool].mounted == {"payments"}
    assert list((await engine.register("ns/pay", spec, pools=settled)).tasks) == ["pay"]
