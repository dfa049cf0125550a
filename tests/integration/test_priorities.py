"""Priorities (issue 10), with a real worker process: a high-priority run submitted after a
backlog is claimed before most of it, and low-priority work still progresses while
high-priority work keeps the high band full (no starvation). Claims are ordered by each
task's ``started_at`` (one slot, so one claim at a time)."""

from __future__ import annotations

import pytest

from conveyor_engine.api import Engine, InvalidInputs
from conveyor_engine.store import ExecutionState
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


async def submit_many(engine: Engine, workflow, count: int, priority: int) -> list[str]:
    return [(await engine.submit(workflow, priority=priority)).execution_id
            for _ in range(count)]


async def started_order(engine: Engine, ids: list[str], timeout: float = 120.0
                        ) -> list[ExecutionState]:
    async def read() -> list[ExecutionState | None]:
        return [await engine.get(i) for i in ids]

    states = await eventually(read, until=lambda s: all(
        x is not None and x.phase == "Succeeded" for x in s),
        timeout=timeout, what=f"{len(ids)} runs to succeed")
    return sorted(states, key=lambda s: (s.tasks[0].started_at, s.execution_id))


def one_task(pool: str) -> dict:
    return {"pool": pool, "tasks": [{"name": "t", "type": "set", "params": {"x": 1}}]}


async def test_a_high_priority_run_submitted_after_a_backlog_goes_before_most_of_it(
    engine: Engine, start_workers, pool: str
) -> None:
    """200 runs at priority -10 (low band) and 200 at 0 (normal) are queued, then one at
    100 (high): with one slot it is among the first claims, ahead of at least 95% of the
    backlog. Normal work goes before low work, except every eighth read."""
    workflow = await engine.register("prio-backlog", one_task(pool))
    low = await submit_many(engine, workflow, 200, -10)
    normal = await submit_many(engine, workflow, 200, 0)
    [urgent] = await submit_many(engine, workflow, 1, 100)
    start_workers(1, concurrency=1)
    order = [s.execution_id for s in await started_order(engine, low + normal + [urgent])]
    assert order.index(urgent) < 20, order.index(urgent)
    # While normal work is queued, low work gets one read in eight (the weighted rule).
    first_half = order[:200]
    lows_early = sum(1 for i in first_half if i in set(low))
    assert 10 <= lows_early <= 40, lows_early
    state = await engine.get(urgent)
    assert state.priority == 100


async def test_low_priority_work_progresses_while_high_priority_work_keeps_arriving(
    engine: Engine, start_workers, pool: str
) -> None:
    """100 low runs, then 300 high runs, and more high runs submitted while the worker
    works: the high band is never empty, yet low runs are claimed all along (at least one
    in every eight reads), not only after the high work is done."""
    workflow = await engine.register("prio-starve", one_task(pool))
    low = set(await submit_many(engine, workflow, 100, -5))
    high = await submit_many(engine, workflow, 300, 50)
    start_workers(1, concurrency=1)
    high += await submit_many(engine, workflow, 100, 50)
    order = [s.execution_id for s in await started_order(engine, list(low) + high)]
    last_high = max(order.index(i) for i in high)
    lows_before = sum(1 for i in order[:last_high] if i in low)
    assert lows_before >= 40, f"only {lows_before} low run(s) before the last high one"
    windows = [order[k:k + 40] for k in range(0, last_high - 40, 40)]
    assert all(any(i in low for i in window) for window in windows), \
        "a window of 40 claims took no low-priority work"


async def test_priority_out_of_range_is_refused_naming_the_field(
    engine: Engine, pool: str
) -> None:
    workflow = await engine.register("prio-bad", one_task(pool))
    with pytest.raises(InvalidInputs, match=r"priority: 1001 is outside -1000\.\.1000"):
        await engine.submit(workflow, priority=1001)
