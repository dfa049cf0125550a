"""Concurrency groups (issue 10), with real worker processes and real stores: ``Queue`` runs
one at a time per key in submission order and says why the others wait, ``Forbid`` refuses,
``Replace`` cancels the open run, a cancel admits the next, and a worker killed while runs
are queued loses nothing and keeps the order."""

from __future__ import annotations

import itertools

import pytest

from conveyor_engine.api import Concurrency, Engine, Policy
from conveyor_engine.store import ExecutionState
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

FINAL = {"Succeeded", "Failed", "Cancelled"}


def per_customer(pool: str, *, policy: str = "Queue", wait: str = "300ms") -> dict:
    """One run per customer at a time: a durable wait then a set task."""
    return {
        "pool": pool,
        "inputs": [{"name": "customer"}, {"name": "wait", "default": wait}],
        "concurrency": {"limit": 1, "key": "inputs.customer", "policy": policy},
        "tasks": [
            {"name": "pause", "type": "wait", "params": {"duration": "${{ inputs.wait }}"}},
            {"name": "done", "type": "set", "dependsOn": ["pause"],
             "params": {"customer": "${{ inputs.customer }}"}},
        ],
    }


async def all_final(engine: Engine, ids: list[str], timeout: float = 90.0
                    ) -> list[ExecutionState]:
    async def read() -> list[ExecutionState | None]:
        return [await engine.get(i) for i in ids]

    return await eventually(read, until=lambda states: all(
        s is not None and s.phase in FINAL for s in states),
        timeout=timeout, what=f"{len(ids)} execution(s) to finish")


def assert_one_at_a_time_in_order(states: list[ExecutionState]) -> None:
    """Each run started after the previous one (in submission order) finished."""
    for earlier, later in itertools.pairwise(states):
        assert earlier.finished_at is not None and later.started_at is not None
        assert later.started_at >= earlier.finished_at, (earlier, later)


async def test_queue_runs_one_at_a_time_per_key_in_submission_order_and_says_why(
    engine: Engine, start_workers, pool: str
) -> None:
    """The issue's scenario: five runs for two customers (a, b, a, a, b) with
    ``{limit: 1, key: inputs.customer, policy: Queue}``. Before any worker runs, the first
    run of each customer is admitted and the others wait, saying how many runs go first;
    then each customer's runs run one at a time, in submission order, and all succeed."""
    workflow = await engine.register("per-customer", per_customer(pool))
    order = ["a", "b", "a", "a", "b"]
    submitted = [await engine.submit(workflow, {"customer": c}) for c in order]
    ids = [s.execution_id for s in submitted]
    assert [s.queued for s in submitted] == [False, False, True, True, True]

    states = [await engine.get(i) for i in ids]
    group = "per-customer[a]"
    assert [s.queued for s in states] == [False, False, True, True, True]
    assert states[2].reason == "ConcurrencyLimit"
    assert states[2].message == (f"waiting for 1 earlier run(s) of key {group!r} "
                                 "(1 running, 0 queued ahead; limit 1)")
    assert states[3].message.startswith("waiting for 2 earlier run(s) of key 'per-customer[a]'")
    assert states[4].message.startswith("waiting for 1 earlier run(s) of key 'per-customer[b]'")
    assert all(t.phase == "Pending" for t in states[2].tasks), "a queued run starts nothing"
    # A suspended run that holds the group's place is named as the reason the queue waits.
    await engine.suspend(ids[0])
    assert "1 of the running are suspended" in (await engine.get(ids[2])).message
    await engine.resume(ids[0])
    assert (await engine.waiting_counts()).get(("ConcurrencyLimit", pool)) == 3

    start_workers(1, concurrency=8, dispatch_interval_seconds=0.05)
    final = await all_final(engine, ids)
    assert [s.phase for s in final] == ["Succeeded"] * 5
    assert all(not s.queued and s.reason is None for s in final)
    by_customer = {c: [s for s, k in zip(final, order, strict=True) if k == c] for c in "ab"}
    assert_one_at_a_time_in_order(by_customer["a"])
    assert_one_at_a_time_in_order(by_customer["b"])
    # The customers do not wait for each other: b's first run overlaps a's first.
    a1, b1 = by_customer["a"][0], by_customer["b"][0]
    assert b1.started_at < a1.finished_at and a1.started_at < b1.finished_at


async def test_forbid_fails_the_new_run_at_once_and_admits_after_the_open_one_finished(
    engine: Engine, start_workers, pool: str
) -> None:
    """``Forbid``: a second run while one is open fails at once with reason
    ``ConcurrencyForbidden``, nothing of it runs; once the first finished, a third runs."""
    workflow = await engine.register("forbid", per_customer(pool, policy="Forbid"))
    first = await engine.submit(workflow, {"customer": "a"})
    second = await engine.submit(workflow, {"customer": "a"})
    other = await engine.submit(workflow, {"customer": "b"})
    assert not first.queued and first.forbidden is None
    assert second.forbidden is not None and "ConcurrencyForbidden" in second.forbidden
    assert other.forbidden is None, "another key is another group"
    refused = await engine.get(second.execution_id)
    assert refused.phase == "Failed" and refused.reason == "ConcurrencyForbidden"
    assert "already has 1 open run(s) (limit 1) and its policy is Forbid" in refused.message
    assert {t.phase for t in refused.tasks} == {"Cancelled"}
    assert refused.finished_at is not None and refused.started_at is None

    start_workers(1, dispatch_interval_seconds=0.05)
    done = await all_final(engine, [first.execution_id, other.execution_id])
    assert [s.phase for s in done] == ["Succeeded", "Succeeded"]
    third = await engine.submit(workflow, {"customer": "a"})
    assert third.forbidden is None and not third.queued
    assert (await all_final(engine, [third.execution_id]))[0].phase == "Succeeded"


async def test_replace_cancels_the_open_run_and_starts_the_new_one(
    engine: Engine, start_workers, pool: str
) -> None:
    """``Replace``: a new run cancels the running one of its key (reason
    ``ConcurrencyReplaced``, its waiting task cancelled) and runs at once."""
    workflow = await engine.register("replace", per_customer(pool, policy="Replace"))
    start_workers(1, dispatch_interval_seconds=0.05)
    old = await engine.submit(workflow, {"customer": "a", "wait": "1h"})
    await eventually(lambda: engine.get(old.execution_id),
                     until=lambda s: s.task("pause").phase == "Waiting", timeout=30,
                     what="the old run to be waiting in its timer")
    new = await engine.submit(workflow, {"customer": "a", "wait": "10ms"})
    assert new.replaced == (old.execution_id,) and not new.queued
    replaced = await engine.get(old.execution_id)
    assert replaced.phase == "Cancelled" and replaced.reason == "ConcurrencyReplaced"
    assert replaced.message == ("ConcurrencyReplaced: replaced by a newer run of "
                                "concurrency group 'replace[a]'")
    assert (await all_final(engine, [new.execution_id]))[0].phase == "Succeeded"


async def test_cancelling_the_running_run_admits_the_next_and_a_direct_group_works(
    engine: Engine, start_workers, pool: str
) -> None:
    """A group given to ``submit`` directly (as a Schedule will) queues like a workflow's;
    cancelling the admitted run admits the next queued one at once."""
    workflow = await engine.register("direct", {"pool": pool, "inputs": [
        {"name": "wait"}], "tasks": [
        {"name": "pause", "type": "wait", "params": {"duration": "${{ inputs.wait }}"}}]})
    group = Concurrency(f"schedule:{pool}", limit=1, policy=Policy.QUEUE)
    first = await engine.submit(workflow, {"wait": "1h"}, concurrency=group)
    second = await engine.submit(workflow, {"wait": "10ms"}, concurrency=group)
    assert not first.queued and second.queued
    start_workers(1, dispatch_interval_seconds=0.05)
    assert (await engine.get(second.execution_id)).queued
    assert await engine.cancel(first.execution_id)
    done = await all_final(engine, [second.execution_id])
    assert done[0].phase == "Succeeded"


async def test_worker_killed_while_runs_are_queued_loses_nothing_and_keeps_the_order(
    engine: Engine, start_workers, pool: str
) -> None:
    """Four runs of one key queue behind each other; the only worker is killed (SIGKILL)
    while the first runs; a new worker takes over: every run succeeds, once, in order."""
    workflow = await engine.register("restart", {
        "pool": pool, "inputs": [{"name": "customer"}],
        "concurrency": {"limit": 1, "key": "inputs.customer"},
        # Long enough that the first run is still open when its worker is killed just
        # after it was seen Running (with 1 s it could finish first on a fast machine); a
        # kill while the wait was claimed loses that attempt, which its retry covers.
        "tasks": [{"name": "work", "type": "wait", "params": {"duration": "3s"},
                   "retry": {"limit": 2, "backoff": "100ms"}},
                  {"name": "after", "type": "set", "dependsOn": ["work"], "params": {}}]})
    ids = [(await engine.submit(workflow, {"customer": "k"})).execution_id for _ in range(4)]
    [worker] = start_workers(1, dispatch_interval_seconds=0.05, lease_seconds=2)
    await eventually(lambda: engine.get(ids[0]), until=lambda s: s.phase == "Running",
                     timeout=30, what="the first run to start")
    worker.kill()
    assert [(await engine.get(i)).queued for i in ids] == [False, True, True, True]
    start_workers(1, dispatch_interval_seconds=0.05, lease_seconds=2)
    final = await all_final(engine, ids, timeout=120)
    assert [s.phase for s in final] == ["Succeeded"] * 4
    assert_one_at_a_time_in_order(final)
    for state in final:
        assert [t.attempt for t in state.tasks if t.name == "after"] == [1]
