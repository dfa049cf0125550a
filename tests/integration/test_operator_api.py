"""The Engine API methods the operator's scaler and follower use, on real Redis/PostgreSQL:
pool queue load (queued, in flight, per consumer) on the engine's Redis and on a Redis given by
URL, durable timers falling due, and compiled workflows looked up by content hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.api import Engine
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


async def test_pool_queues_count_queued_and_in_flight_per_consumer(
    engine: Engine, pool: str, redis_url: str
) -> None:
    workflow = await engine.register("load", {"pool": pool, "tasks": [
        {"name": f"t{i}", "type": "set", "params": {}} for i in range(3)]})
    own, by_url = engine.pool_queues(), engine.pool_queues(redis_url)
    try:
        assert (await own.backlog(pool)).queued == 0  # no stream yet: zeros, not an error
        await engine.submit(workflow)
        for queues in (own, by_url):
            backlog = await queues.backlog(pool)
            assert (backlog.queued, backlog.in_flight) == (3, 0)
            assert await queues.in_flight_by_consumer(pool) == {}
        # A worker named pod-1-ab takes two entries (what the scaler sees between claim and ack).
        await engine.queue.read(pool, "pod-1-ab", count=2, block_ms=10)
        for queues in (own, by_url):
            backlog = await queues.backlog(pool)
            assert (backlog.queued, backlog.in_flight) == (1, 2)
            assert await queues.in_flight_by_consumer(pool) == {"pod-1-ab": 2}
    finally:
        await own.close()
        await by_url.close()
    assert await engine.redis.ping()  # closing the engine's own reader left its Redis open


async def test_timers_due_before_counts_waiting_tasks_of_the_pool(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("timers", {"pool": pool, "tasks": [
        {"name": "pause", "type": "wait", "params": {"duration": "1h"}}]})
    assert await engine.timers_due_before(pool, datetime.now(UTC) + timedelta(days=1)) == 0
    start_workers(1)
    submission = await engine.submit(workflow)
    later = datetime.now(UTC) + timedelta(hours=2)
    await eventually(lambda: engine.timers_due_before(pool, later), until=lambda n: n == 1,
                     what="the wait's timer")
    assert await engine.timers_due_before(pool, datetime.now(UTC)) == 0
    assert await engine.timers_due_before(f"{pool}-other", later) == 0
    assert await engine.cancel(submission.execution_id)


async def test_workflow_by_content_hash(engine: Engine, pool: str) -> None:
    compiled = await engine.register("ns/lookup", {"pool": pool, "tasks": [
        {"name": "a", "type": "set", "params": {}}]})
    found = await engine.workflow(compiled.content_hash, "ns/lookup")
    assert (found.content_hash, list(found.tasks)) == (compiled.content_hash, ["a"])
    with pytest.raises(LookupError):
        await engine.workflow("sha256:" + "f" * 64, "ns/missing")
