"""Helpers of the stores' fault tests: work that spans an outage, and checks that nothing
was lost or recorded twice."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import httpx

from conveyor_engine.api import Engine
from conveyor_engine.phases import ExecutionPhase


def chain(pool: str, httpbin_url: str | None = None, length: int = 3) -> dict[str, Any]:
    """A chain of ``length`` tasks; the first calls httpbin's ``/delay/0.2`` when given
    (so work is still running when a server is cut), the rest are ``set`` tasks."""
    tasks: list[dict[str, Any]] = []
    for i in range(length):
        task: dict[str, Any] = {"name": f"t{i}", "type": "set", "params": {"i": i}}
        if i == 0 and httpbin_url:
            task = {"name": "t0", "type": "http", "params": {"url": f"{httpbin_url}/delay/0.2"}}
        if i:
            task["dependsOn"] = [f"t{i - 1}"]
        tasks.append(task)
    return {"pool": pool, "tasks": tasks}


async def quietly(call, default=None):
    """``await call()``, or ``default`` when it raises (the test's own client meets the
    outage too; the test polls again)."""
    try:
        return await call()
    except Exception:
        return default


async def all_final(engine: Engine, ids: list[str], timeout: float) -> dict[str, str]:
    """Poll until every execution is final; return ``{id: phase}``. AssertionError with the
    unfinished ones after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    final = {str(p) for p in (ExecutionPhase.SUCCEEDED, ExecutionPhase.FAILED,
                              ExecutionPhase.CANCELLED)}
    phases: dict[str, str] = {}
    while True:
        for eid in ids:
            if phases.get(eid) in final:
                continue
            state = await quietly(lambda e=eid: engine.get(e))
            if state is not None:
                phases[eid] = state.phase
        if all(phases.get(eid) in final for eid in ids):
            return phases
        if time.monotonic() > deadline:
            open_ = {e: phases.get(e) for e in ids if phases.get(e) not in final}
            raise AssertionError(f"not final after {timeout}s: {open_}")
        await asyncio.sleep(0.2)


async def assert_each_task_recorded_once(engine: Engine, ids: list[str], tasks: int) -> None:
    """Every execution Succeeded with exactly one attempt row per task, each Succeeded:
    nothing lost, nothing recorded twice."""
    for eid in ids:
        state = await engine.get(eid)
        assert state is not None and state.phase == "Succeeded", (eid, state)
        attempts = await engine.attempts(eid)
        counts = Counter((a.task, a.attempt) for a in attempts)
        assert all(n == 1 for n in counts.values()), (eid, counts)
        assert sorted(a.task for a in attempts) == sorted(f"t{i}" for i in range(tasks)), \
            (eid, [(a.task, a.attempt, a.outcome) for a in attempts])
        assert {a.outcome for a in attempts} == {"Succeeded"}, attempts


async def probe(port: int) -> tuple[int, str]:
    """``(/readyz status, /metrics text)`` of a worker's health server."""
    async with httpx.AsyncClient(timeout=5) as client:
        ready = await client.get(f"http://127.0.0.1:{port}/readyz")
        metrics = await client.get(f"http://127.0.0.1:{port}/metrics")
    return ready.status_code, metrics.text


def dependency_up(metrics: str, dependency: str) -> float | None:
    """The value of ``conveyor_dependency_up{dependency="..."}`` in a scrape, or None."""
    prefix = f'conveyor_dependency_up{{dependency="{dependency}"}} '
    for line in metrics.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    return None
