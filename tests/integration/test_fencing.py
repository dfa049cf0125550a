"""Leases, fencing and lost attempts (issue 9, items 1, 2 and 5), with real processes.

* A worker killed mid-task leaves a ``Lost`` attempt (reason ``WorkerLost``) that counts
  against the task's ``retry.limit``.
* A worker that is alive and renewing keeps its task through a Redis outage longer than
  twice the lease: it is not run a second time.
* An outcome from a claim that was taken over is refused (fencing), in the store and from a
  real worker frozen with SIGSTOP and then resumed.
* ``Engine.submit`` returns a committed execution even when Redis is down; the dispatcher
  recovers its dispatch from PostgreSQL and it runs once.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.api import Engine
from conveyor_engine.store import TaskRef
from conveyor_engine.tasktypes.base import Succeeded
from conveyor_engine.worker.outcome import lost_record, outcome_record
from tests.support.counting import counting_server
from tests.support.polling import eventually
from tests.support.private_redis import PrivateRedis
from tests.support.runs import finished
from tests.support.workers import WorkerProcess, worker_env

pytestmark = pytest.mark.integration


@pytest.fixture
def counter() -> Iterator[tuple[str, dict[str, int]]]:
    """``(base url, hits by path)`` of a counting HTTP server on loopback."""
    with counting_server() as served:
        yield served


def slow_pair(pool: str, base: str, seconds: float, retry: dict) -> dict:
    """``only`` (a slow HTTP call with ``retry``) -> ``next``."""
    return {"pool": pool, "tasks": [
        {"name": "only", "type": "http", "params": {"url": f"{base}/slow/{seconds}"},
         "retry": retry},
        {"name": "next", "type": "set", "dependsOn": ["only"], "params": {"v": 1}}]}


async def running(engine: Engine, execution_id: str) -> None:
    await eventually(lambda: engine.get(execution_id),
                     until=lambda s: s.task("only").phase == "Running",
                     what="the task to be running")


def history(attempts: list) -> list[tuple]:
    return [(a.task, a.attempt, a.outcome, a.reason, (a.worker or "")[:3]) for a in attempts]


# -- item 2: lost attempts ------------------------------------------------------------------


async def test_worker_killed_mid_task_with_no_retries_left_fails_the_task_worker_lost(
    engine: Engine, start_workers, counter, pool: str
) -> None:
    base, hits = counter
    workflow = await engine.register("lost0", slow_pair(pool, base, 3, {"limit": 0}))
    (doomed,) = start_workers(1, lease_seconds=1.5)
    submission = await engine.submit(workflow)
    await running(engine, submission.execution_id)
    doomed.kill()  # SIGKILL mid-task: no hand-back, no outcome

    start_workers(1, lease_seconds=1.5)
    state = await finished(engine, submission.execution_id)
    only = state.task("only")
    assert state.phase == "Failed"
    assert (only.phase, only.reason, only.attempt) == ("Failed", "WorkerLost", 1)
    assert only.error.startswith("WorkerLost: worker w0-"), only.error
    assert state.task("next").phase == "Skipped"
    attempts = await engine.attempts(submission.execution_id)
    assert history(attempts) == [("only", 1, "Lost", "WorkerLost", "w0-")]
    assert attempts[0].started_at is not None
    assert attempts[0].started_at < attempts[0].finished_at
    assert hits.get("/slow/3", 0) <= 1  # killed before or during its call; never run again


async def test_worker_killed_mid_task_is_retried_as_attempt_two_and_history_keeps_both(
    engine: Engine, start_workers, counter, pool: str
) -> None:
    base, hits = counter
    workflow = await engine.register("lost1", slow_pair(
        pool, base, 2, {"limit": 1, "backoff": "100ms"}))
    (doomed,) = start_workers(1, lease_seconds=1.5)
    submission = await engine.submit(workflow)
    await running(engine, submission.execution_id)
    doomed.kill()

    start_workers(1, lease_seconds=1.5, dispatch_interval_seconds=0.05)
    state = await finished(engine, submission.execution_id)
    assert state.phase == "Succeeded", state.message
    assert state.task("only").attempt == 2
    attempts = await engine.attempts(submission.execution_id)
    assert history(attempts) == [("next", 1, "Succeeded", None, "w1-"),
                                 ("only", 1, "Lost", "WorkerLost", "w0-"),
                                 ("only", 2, "Succeeded", None, "w1-")]
    assert 1 <= hits["/slow/2"] <= 2  # the retry's call, and the lost one's if it got that far


# -- item 1: fencing in the store --------------------------------------------------------------


async def test_store_refuses_an_outcome_from_a_claim_that_is_no_longer_current(
    engine: Engine, pool: str
) -> None:
    workflow = await engine.register("fence", {"pool": pool, "tasks": [
        {"name": "only", "type": "set", "params": {"v": 1}}]})
    submission = await engine.submit(workflow)  # no worker serves this pool
    ref = TaskRef(submission.execution_id, "only", 1)
    now, lease = datetime.now(UTC), timedelta(seconds=30)
    (first,) = await engine.store.claim([ref], worker="A", now=now, lease=lease)
    await engine.store.hand_back([ref], worker="A", now=now)  # same attempt, Ready again
    (second,) = await engine.store.claim([ref], worker="B", now=now, lease=lease)
    assert (first.ref, second.ref) == (ref, ref) and second.claim == first.claim + 1

    def done(worker: str, claim: int, value: int):
        return outcome_record(ref, Succeeded({"v": value}), worker=worker, started=now,
                              finished=now, workflow=workflow, task=workflow.tasks["only"],
                              claim=claim)

    late = done("A", first.claim, 1)
    result = await engine.store.commit_outcomes([late], now=now)
    assert (result.applied, result.refused) == ([], [late])
    result = await engine.store.commit_outcomes([done("B", second.claim, 2)], now=now)
    assert len(result.applied) == 1 and result.refused == []
    state = await engine.get(submission.execution_id)
    assert (state.phase, state.task("only").outputs) == ("Succeeded", {"v": 2})
    assert history(await engine.attempts(submission.execution_id)) == [
        ("only", 1, "Succeeded", None, "B")]


async def test_takeover_is_refused_while_the_claims_lease_is_renewed_then_applies(
    engine: Engine, pool: str
) -> None:
    workflow = await engine.register("fence-lease", {"pool": pool, "tasks": [
        {"name": "only", "type": "set", "params": {"v": 1}, "retry": {"limit": 1}}]})
    submission = await engine.submit(workflow)
    ref = TaskRef(submission.execution_id, "only", 1)
    now = datetime.now(UTC)
    await engine.store.claim([ref], worker="A", now=now, lease=timedelta(seconds=30))
    (held,) = await engine.store.held_claims([ref])
    assert (held.worker, held.lease_until) == ("A", now + timedelta(seconds=30))

    takeover = lost_record(held, error="worker A stopped renewing", now=now, lease_before=now,
                           workflow=workflow)
    result = await engine.store.commit_outcomes([takeover], now=now)
    assert (result.applied, result.refused) == ([], [])  # A's lease is alive: A keeps it
    assert (await engine.get(submission.execution_id)).task("only").phase == "Running"

    later = now + timedelta(seconds=31)
    takeover = lost_record(held, error="worker A stopped renewing", now=later,
                           lease_before=later, workflow=workflow)
    result = await engine.store.commit_outcomes([takeover], now=later)
    assert result.applied == [takeover]
    only = (await engine.get(submission.execution_id)).task("only")
    assert (only.phase, only.reason, only.attempt) == ("Waiting", "WorkerLost", 1)
    late = outcome_record(ref, Succeeded({"v": 1}), worker="A", started=now, finished=later,
                          workflow=workflow, task=workflow.tasks["only"], claim=held.claim)
    assert (await engine.store.commit_outcomes([late], now=later)).applied == []
    assert history(await engine.attempts(submission.execution_id)) == [
        ("only", 1, "Lost", "WorkerLost", "A")]


# -- item 1: fencing against a real worker, frozen and resumed -----------------------------------


async def test_late_outcome_of_a_frozen_worker_is_refused_after_its_claim_was_taken_over(
    engine: Engine, start_workers, counter, pool: str
) -> None:
    base, hits = counter
    workflow = await engine.register("frozen", slow_pair(
        pool, base, 2, {"limit": 1, "backoff": "100ms"}))
    (frozen,) = start_workers(1, lease_seconds=1, concurrency=1)
    submission = await engine.submit(workflow)
    await running(engine, submission.execution_id)
    os.kill(frozen.proc.pid, signal.SIGSTOP)  # alive, but renews nothing
    try:
        start_workers(1, lease_seconds=1, dispatch_interval_seconds=0.05)
        state = await finished(engine, submission.execution_id)
        assert state.phase == "Succeeded", state.message
    finally:
        os.kill(frozen.proc.pid, signal.SIGCONT)
    await eventually(lambda: asyncio.to_thread(frozen.log),
                     until=lambda text: "refused the outcome" in text,
                     what="the frozen worker's late commit to be refused")
    assert history(await engine.attempts(submission.execution_id)) == [
        ("next", 1, "Succeeded", None, "w1-"),
        ("only", 1, "Lost", "WorkerLost", "w0-"),
        ("only", 2, "Succeeded", None, "w1-")]
    state = await engine.get(submission.execution_id)
    assert (state.phase, state.task("only").attempt) == ("Succeeded", 2)
    assert hits == {"/slow/2": 2}  # at least once: both ran, one outcome was recorded


# -- private Redis: outages ---------------------------------------------------------------------


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A private redis-server this test may kill, restart or freeze."""
    server = PrivateRedis()
    server.start()
    yield server
    server.close()


@pytest.fixture
async def private_engine(private_redis: PrivateRedis, database_url: str
                         ) -> AsyncIterator[Engine]:
    """An engine client on the private Redis and the session database."""
    client = await Engine.connect(redis_url=private_redis.url, database_url=database_url,
                                  key_prefix=f"ct-{secrets.token_hex(4)}")
    yield client
    await client.close()


@pytest.fixture
def private_workers(private_engine: Engine, private_redis: PrivateRedis, database_url: str,
                    pool: str) -> Iterator:
    """``start(name, **settings)``: a worker process on the private Redis; all stopped after."""
    started: list[WorkerProcess] = []

    def start(name: str, **settings: object) -> WorkerProcess:
        env = worker_env(redis_url=private_redis.url, database_url=database_url,
                         key_prefix=private_engine.keys.prefix, pool=pool,
                         **{k: str(v) for k, v in settings.items()})
        worker = WorkerProcess(env, name)
        started.append(worker)
        worker.wait_serving()
        return worker

    yield start
    for worker in started:
        worker.kill()
        print(f"--- {worker.log_path}\n{worker.log()[-4000:]}")


@pytest.mark.slow
@pytest.mark.parametrize("outage", ["killed", "frozen"])
async def test_redis_outage_longer_than_two_leases_does_not_rerun_a_task_on_a_live_worker(
    private_engine: Engine, private_redis: PrivateRedis, private_workers, counter, pool: str,
    outage: str
) -> None:
    base, hits = counter
    lease = 2.0
    settings = {"lease_seconds": lease, "concurrency": 1, "dispatch_interval_seconds": 0.05,
                "dispatch_grace_seconds": 1}
    workflow = await private_engine.register("outage", slow_pair(pool, base, 9, {"limit": 1}))
    private_workers("w0", **settings)
    submission = await private_engine.submit(workflow)
    await running(private_engine, submission.execution_id)
    private_workers("w1", **settings)

    if outage == "killed":
        private_redis.kill()
        await asyncio.sleep(2.5 * lease)  # the outage itself: longer than twice the lease
        private_redis.start()  # back, empty: streams, groups and pending entries are gone
    else:
        # Black-holed: connections open, nothing answered. (The code before issue 9 happened
        # to survive this form: its hung renewal and the dispatcher resumed together. The
        # killed form above is the one that reproduced the double run.)
        private_redis.pause()
        await asyncio.sleep(2.5 * lease)
        private_redis.resume()  # back with its data: the stream entry idled through it

    state = await finished(private_engine, submission.execution_id, timeout=60)
    assert state.phase == "Succeeded", state.message
    assert hits == {"/slow/9": 1}
    rows = history(await private_engine.attempts(submission.execution_id))
    assert [row[:4] for row in rows] == [("next", 1, "Succeeded", None),
                                         ("only", 1, "Succeeded", None)]
    assert rows[1][4] == "w0-"


@pytest.mark.parametrize("outage", ["killed", "frozen"])
async def test_submit_returns_the_committed_execution_while_redis_is_down_and_it_runs_once(
    private_engine: Engine, private_redis: PrivateRedis, private_workers, counter, pool: str,
    outage: str
) -> None:
    base, hits = counter
    workflow = await private_engine.register("submit", {"pool": pool, "tasks": [
        {"name": "only", "type": "http", "params": {"url": f"{base}/once"}}]})
    await private_engine.queue.ensure_group(pool)
    private_engine._groups.add(pool)  # as after an earlier submit: the group is known
    if outage == "killed":
        private_redis.kill()
    else:
        private_redis.pause()
    try:
        submission = await asyncio.wait_for(private_engine.submit(workflow), 20)
    finally:
        if outage == "killed":
            private_redis.start()
        else:
            private_redis.resume()
    assert submission.created
    state = await private_engine.get(submission.execution_id)
    assert state.phase in ("Pending", "Running", "Succeeded")

    private_workers("w0", dispatch_grace_seconds=1, dispatch_interval_seconds=0.05)
    state = await finished(private_engine, submission.execution_id, timeout=30)
    assert state.phase == "Succeeded", state.message
    assert hits == {"/once": 1}
