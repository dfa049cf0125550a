"""The dispatcher's queries keep using the partial indexes made for them.

Those indexes hold the tasks of one phase (``WHERE phase = 'Waiting'``). PostgreSQL uses a
partial index only when the query's condition implies the index's predicate, which a ``$n``
parameter never does in a generic plan, and asyncpg prepares every statement. So the store
names these phases in the SQL text (``base.phase_literal``) while every other phase is a
parameter; these tests pin both halves of that reasoning.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from conveyor_engine.api import Engine
from conveyor_engine.phases import TaskPhase
from conveyor_engine.store import claims, timers
from conveyor_engine.store.base import pick_and_update_sql

pytestmark = pytest.mark.integration

_BATCH_TYPES = "text, timestamptz, timestamptz, int, text"
_BATCH_ARGS = "'p', now(), now(), 10, 'Ready'"


@pytest_asyncio.fixture(loop_scope="session")
async def conn(engine: Engine, database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection planning every prepared statement generically, index scans preferred."""
    connection = await asyncpg.connect(database_url)
    await connection.execute("SET plan_cache_mode = force_generic_plan")
    await connection.execute("SET enable_seqscan = off")
    try:
        yield connection
    finally:
        await connection.close()


async def generic_plan(conn: asyncpg.Connection, sql: str, types: str, args: str) -> str:
    await conn.execute(f"PREPARE q ({types}) AS {sql}")
    try:
        rows = await conn.fetch(f"EXPLAIN EXECUTE q ({args})")
    finally:
        await conn.execute("DEALLOCATE q")
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize(("sql", "types", "args", "index"), [
    (timers._FIRE_TIMERS, _BATCH_TYPES, _BATCH_ARGS, "tasks_waiting"),
    (timers._REARM_LOST, _BATCH_TYPES, _BATCH_ARGS, "tasks_ready"),
    (claims._ABANDONED, "text, timestamptz, int", "'p', now(), 10", "tasks_running_lease"),
    # Both partial indexes of Running tasks serve it; which one the planner takes depends on
    # the statistics the session's earlier tests left (the point is that one is used).
    (claims._RENEW, "text, timestamptz", "'w', now()",
     ("tasks_running_worker", "tasks_running_lease")),
    (timers._NEXT_TIMER, "text", "'p'", "tasks_waiting"),
    (timers._TIMERS_DUE_BEFORE, "text, timestamptz", "'p', now()", "tasks_waiting"),
])
async def test_dispatcher_queries_use_their_partial_index_in_a_generic_plan(
    conn: asyncpg.Connection, sql: str, types: str, args: str, index: str | tuple[str, ...]
) -> None:
    plan = await generic_plan(conn, sql, types, args)
    assert any(name in plan for name in ((index,) if isinstance(index, str) else index)), plan


async def test_a_phase_parameter_would_lose_the_partial_index(conn: asyncpg.Connection) -> None:
    literal = pick_and_update_sql(phase=TaskPhase.WAITING, column="due_at", inclusive=True,
                                  set_sql="worker = NULL")
    parameter = literal.replace("phase = 'Waiting'", "phase = $5::text")
    assert parameter != literal
    assert "tasks_waiting" in await generic_plan(conn, literal, _BATCH_TYPES, _BATCH_ARGS)
    assert "tasks_waiting" not in await generic_plan(conn, parameter, _BATCH_TYPES,
                                                     _BATCH_ARGS)
