"""Migrations and the change stream against real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import asyncpg
import pytest

from conveyor_engine.api import Engine
from conveyor_engine.events import Event
from conveyor_engine.store.migrate import available
from conveyor_sandbox import services
from tests.support.polling import eventually

pytestmark = pytest.mark.integration


async def test_migrate_command_creates_the_schema_once(postgres_server_url: str) -> None:
    async with services.fresh_database(postgres_server_url, "conveyor_migrate") as url:
        env = {**os.environ, "CONVEYOR_DATABASE_URL": url}
        command = [sys.executable, "-m", "conveyor_engine", "migrate"]
        first, second = [
            await asyncio.to_thread(subprocess.run, command, env=env, capture_output=True,
                                    text=True, timeout=60)
            for _ in range(2)
        ]
        assert first.returncode == 0, first.stderr
        shipped = [m.version for m in available()]
        assert f"applied migrations: {shipped}" in first.stdout
        assert "none (schema up to date)" in second.stdout
        conn = await asyncpg.connect(url)
        try:
            tables = {r["tablename"] for r in await conn.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        finally:
            await conn.close()
        assert {"workflow_versions", "executions", "tasks", "attempts",
                "conveyor_schema_migrations"} <= tables


async def test_concurrent_migrations_apply_each_file_once(postgres_server_url: str) -> None:
    from conveyor_engine.store import Store

    async with services.fresh_database(postgres_server_url, "conveyor_migrate") as url:
        stores = await asyncio.gather(*(Store.connect(url, apply_migrations=False)
                                        for _ in range(3)))
        try:
            applied = await asyncio.gather(*(s.migrate() for s in stores))
        finally:
            await asyncio.gather(*(s.close() for s in stores))
        assert sorted(applied) == [[], [], [m.version for m in available()]]


async def test_subscribers_see_every_phase_change_of_an_execution(
    engine: Engine, start_workers, pool: str
) -> None:
    workflow = await engine.register("watched", {
        "pool": pool,
        "tasks": [{"name": "a", "type": "set", "params": {"v": 1}},
                  {"name": "b", "type": "set", "dependsOn": ["a"], "params": {"v": 2}}],
    })
    seen: list[Event] = []

    async def follow() -> None:
        async for batch in engine.events():
            seen.extend(batch)

    follower = asyncio.create_task(follow())
    channel = engine.keys.events()
    await eventually(lambda: engine.redis.pubsub_numsub(channel),
                     until=lambda counts: counts[0][1] >= 1, what="the subscription")
    start_workers(1)
    submission = await engine.submit(workflow)
    mine = lambda: [e for e in seen if e.execution == submission.execution_id]  # noqa: E731

    async def succeeded() -> bool:
        return any(e.task is None and e.phase == "Succeeded" for e in mine())

    await eventually(succeeded, what="the Succeeded event")
    follower.cancel()

    executions = [e.phase for e in mine() if e.task is None]
    assert executions[0] == "Pending" and "Running" in executions
    assert executions[-1] == "Succeeded"
    for task in ("a", "b"):
        phases = [e.phase for e in mine() if e.task == task]
        assert phases[-1] == "Succeeded" and "Running" in phases, (task, phases)
