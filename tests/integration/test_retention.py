"""Retention against real PostgreSQL: exactly the expired executions are deleted (with their
tasks and attempts), in several short batches, by a worker's dispatcher and by the command."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from conveyor_engine.api import Engine
from conveyor_engine.retention import is_expired, purge_expired
from conveyor_sandbox import services
from tests.support.polling import eventually

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC)
DAY = timedelta(days=1)


async def seed(conn: asyncpg.Connection, pool: str) -> tuple[set[str], set[str]]:
    """Executions of ``pool``: 23 finished 10 days ago or more (expired at 7 days), and
    kept ones (finished 1 day ago, open for 30 days, finished just inside the cutoff).
    Each has two tasks and an attempt. Returns ``(expired ids, kept ids)``."""
    content_hash = f"sha256:{secrets.token_hex(32)}"
    await conn.execute("INSERT INTO workflow_versions (content_hash, name, spec) "
                       "VALUES ($1, 'w', '{}'::jsonb)", content_hash)
    rows = []
    for i in range(23):
        rows.append(("Succeeded Failed Cancelled".split()[i % 3], NOW - (10 + i) * DAY))
    rows += [("Succeeded", NOW - DAY), ("Failed", NOW - 6 * DAY), ("Running", None),
             ("Pending", None), ("Running", None)]
    expired, kept = set(), set()
    cutoff = NOW - 7 * DAY
    for phase, finished_at in rows:
        eid = str(uuid.uuid4())
        created = (finished_at or NOW) - timedelta(hours=1) if finished_at else NOW - 30 * DAY
        await conn.execute(
            "INSERT INTO executions (id, workflow_name, workflow_hash, pool, inputs, phase, "
            "tasks_total, tasks_open, created_at, started_at, finished_at) VALUES "
            "($1, 'w', $2, $3, '{}'::jsonb, $4, 2, $5, $6, $6, $7)",
            uuid.UUID(eid), content_hash, pool, phase, 0 if finished_at else 2, created,
            finished_at)
        for name in ("a", "b"):
            await conn.execute(
                "INSERT INTO tasks (execution_id, name, type, pool, phase, deps_open) "
                "VALUES ($1, $2, 'set', $3, 'Succeeded', 0)", uuid.UUID(eid), name, pool)
        await conn.execute(
            "INSERT INTO attempts (execution_id, task_name, attempt, outcome, finished_at) "
            "VALUES ($1, 'a', 1, 'Succeeded', $2)", uuid.UUID(eid), finished_at or NOW)
        (expired if is_expired(phase, finished_at, cutoff) else kept).add(eid)
    assert len(expired) == 23 and len(kept) == 5
    return expired, kept


async def remaining(conn: asyncpg.Connection, pool: str) -> tuple[set[str], int, int]:
    """Execution ids of ``pool`` still present, and their task and attempt row counts."""
    ids = {str(r["id"]) for r in await conn.fetch(
        "SELECT id FROM executions WHERE pool = $1", pool)}
    tasks = await conn.fetchval("SELECT count(*) FROM tasks WHERE pool = $1", pool)
    attempts = await conn.fetchval(
        "SELECT count(*) FROM attempts a JOIN executions e ON e.id = a.execution_id "
        "WHERE e.pool = $1", pool)
    orphans = await conn.fetchval(
        "SELECT count(*) FROM attempts a WHERE NOT EXISTS "
        "(SELECT 1 FROM executions e WHERE e.id = a.execution_id)")
    assert orphans == 0
    return ids, tasks, attempts


async def test_purge_deletes_exactly_the_expired_executions_in_batches(
    engine: Engine, database_url: str, pool: str
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        _, kept = await seed(conn, pool)
        report = await purge_expired(engine.store, cutoff=NOW - 7 * DAY, pool=pool, batch=5)
        ids, tasks, attempts = await remaining(conn, pool)
    finally:
        await conn.close()
    assert ids == kept
    assert (tasks, attempts) == (2 * len(kept), len(kept))
    assert report.batches == [5, 5, 5, 5, 3]


async def test_purge_skips_rows_another_transaction_holds_instead_of_waiting(
    engine: Engine, database_url: str, pool: str
) -> None:
    conn, holder = await asyncpg.connect(database_url), await asyncpg.connect(database_url)
    try:
        expired, kept = await seed(conn, pool)
        held = sorted(expired)[0]
        tx = holder.transaction()
        await tx.start()
        # A worker (or anything) holding one expired execution's row, as a commit would.
        await holder.execute("SELECT 1 FROM executions WHERE id = $1 FOR UPDATE",
                             uuid.UUID(held))
        report = await asyncio.wait_for(
            purge_expired(engine.store, cutoff=NOW - 7 * DAY, pool=pool, batch=5), timeout=10)
        ids, _, _ = await remaining(conn, pool)
        await tx.rollback()
        assert ids == kept | {held}
        assert report.deleted == len(expired) - 1
        # Released, it goes on the next run.
        await purge_expired(engine.store, cutoff=NOW - 7 * DAY, pool=pool, batch=5)
        ids, _, _ = await remaining(conn, pool)
        assert ids == kept
    finally:
        await holder.close()
        await conn.close()


async def test_a_workers_dispatcher_deletes_expired_history_in_several_batches(
    engine: Engine, database_url: str, pool: str, start_workers
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        _, kept = await seed(conn, pool)
        [worker] = start_workers(1, retention_days=7, retention_interval_seconds=3600,
                                 retention_batch_size=4)

        async def present() -> set[str]:
            ids, _, _ = await remaining(conn, pool)
            return ids

        await eventually(present, until=lambda ids: ids == kept, timeout=30,
                         what="exactly the expired executions deleted")
        _, tasks, attempts = await remaining(conn, pool)
    finally:
        await conn.close()
    assert (tasks, attempts) == (2 * len(kept), len(kept))
    batches = [int(n) for n in re.findall(r"retention: deleted (\d+) execution", worker.log())]
    # A full batch is followed by another on the next pass (the interval is an hour).
    assert batches == [4, 4, 4, 4, 4, 3]


async def test_retention_command_deletes_expired_history_of_every_pool(
    postgres_server_url: str
) -> None:
    async with services.fresh_database(postgres_server_url, "conveyor_retention") as url:
        from conveyor_engine.store import Store
        store = await Store.connect(url)
        await store.close()
        conn = await asyncpg.connect(url)
        try:
            _, kept_a = await seed(conn, "pa")
            _, kept_b = await seed(conn, "pb")
            env = {**os.environ, "CONVEYOR_DATABASE_URL": url,
                   "CONVEYOR_RETENTION_BATCH_SIZE": "10"}
            command = [sys.executable, "-m", "conveyor_engine", "retention", "--days", "7"]
            done = await asyncio.to_thread(subprocess.run, command, env=env,
                                           capture_output=True, text=True, timeout=60)
            assert done.returncode == 0, done.stderr
            assert "deleted 46 execution(s) in 5 batch(es)" in done.stdout
            left = {str(r["id"]) for r in await conn.fetch("SELECT id FROM executions")}
            assert left == kept_a | kept_b
            off = await asyncio.to_thread(
                subprocess.run, command[:-2], env=env, capture_output=True, text=True,
                timeout=60)
            assert off.returncode == 2 and "CONVEYOR_RETENTION_DAYS" in off.stderr
        finally:
            await conn.close()


async def test_cache_entries_of_a_finished_execution_expire_within_minutes(
    engine: Engine, start_workers, pool: str
) -> None:
    from conveyor_engine.cache import FINISHED_TTL_SECONDS, TTL_SECONDS

    workflow = await engine.register("short-lived", {"pool": pool, "tasks": [
        {"name": "a", "type": "set", "params": {"v": 1}},
        {"name": "b", "type": "set", "dependsOn": ["a"], "params": {"v": 2}}]})
    submission = await engine.submit(workflow)
    eid = submission.execution_id
    header, outputs = engine.keys.execution(eid), engine.keys.outputs(eid)
    # While it runs (no worker yet) the header lives for a day.
    assert await engine.redis.ttl(header) > FINISHED_TTL_SECONDS
    start_workers(1)
    state = await eventually(lambda: engine.get(eid), until=lambda s: s.phase == "Succeeded",
                             timeout=60, what="the execution to succeed")
    assert state.phase == "Succeeded"
    ttls = [await engine.redis.ttl(key) for key in (header, outputs)]
    assert all(0 < ttl <= FINISHED_TTL_SECONDS for ttl in ttls), (ttls, TTL_SECONDS)
    # A worker putting the header back after a miss gives it the short TTL too.
    await engine.redis.delete(header)
    await engine.cache.put_headers(list((await engine.store.execution_headers([eid])).values()))
    assert 0 < await engine.redis.ttl(header) <= FINISHED_TTL_SECONDS


async def test_cache_entries_of_a_cancelled_execution_expire_within_minutes(
    engine: Engine, pool: str
) -> None:
    from conveyor_engine.cache import FINISHED_TTL_SECONDS

    workflow = await engine.register("cancelled-soon", {"pool": pool, "tasks": [
        {"name": "pause", "type": "wait", "params": {"duration": "1h"}}]})
    eid = (await engine.submit(workflow)).execution_id
    header = engine.keys.execution(eid)
    assert await engine.redis.ttl(header) > FINISHED_TTL_SECONDS
    assert await engine.cancel(eid)
    assert 0 < await engine.redis.ttl(header) <= FINISHED_TTL_SECONDS
