"""All SQL Conveyor runs, behind one class. PostgreSQL is the source of truth.

:class:`Store` is a facade over one mixin per concern, each in its own module:

* :mod:`.executions`: workflow versions; creating and reading executions;
* :mod:`.lifecycle`: cancel, suspend and resume, retry from the failed step;
* :mod:`.claims`: claiming attempts, their leases, hand-back and abandoned claims;
* :mod:`.outcomes`: the batch commit of attempt outcomes (its decisions: :mod:`.decisions`);
* :mod:`.timers`: durable timers and lost dispatches (the dispatcher's queries);
* :mod:`.retention`: deleting expired history in batches (the retention job);
* :mod:`.locks`: locks and semaphores: acquire, renew, release, sweep, wake waiters;
* :mod:`.ratelimits`: rate-limit declarations, one global limit per key;
* :mod:`.children`: child executions of ``workflow`` tasks, the version a workflow name
  resolves to, a run's stored outputs.

Batch statements take parallel arrays through ``unnest`` so that a batch of any size costs
one round trip per statement (asyncpg sends arrays natively). Every state change is guarded
by the phase and attempt it expects, which is what makes a repeated or late delivery of the
same attempt harmless: at most one final outcome is recorded per (execution, task, attempt).
"""

from __future__ import annotations

from typing import Any

import asyncpg
import orjson

from .children import ChildQueries
from .claims import ClaimQueries
from .executions import ExecutionQueries
from .handlers import DeadlineQueries
from .lifecycle import LifecycleQueries
from .locks import LockQueries
from .migrate import migrate
from .outcomes import OutcomeQueries
from .ratelimits import RateLimitQueries
from .retention import RetentionQueries
from .timers import TimerQueries


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(
            typename,
            encoder=lambda v: orjson.dumps(v).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


class Store(ExecutionQueries, LifecycleQueries, ClaimQueries, OutcomeQueries, TimerQueries,
            RetentionQueries, LockQueries, RateLimitQueries, DeadlineQueries,
            ChildQueries):
    """PostgreSQL access for the engine. Create with :meth:`connect`; close with :meth:`close`.

    All methods raise asyncpg errors unchanged on connection problems; callers decide
    whether to retry. Times passed in are timezone-aware UTC datetimes.
    """

    @classmethod
    async def connect(
        cls, dsn: str, *, min_size: int = 1, max_size: int = 10, apply_migrations: bool = True,
        ssl: Any = None, **pool_options: Any,
    ) -> Store:
        """Open a connection pool to ``dsn`` and (by default) apply pending migrations.

        ``ssl`` is an ``ssl.SSLContext`` (see :mod:`conveyor_engine.connections`) or None
        to follow the URL's ``sslmode``. ``pool_options`` go to ``asyncpg.create_pool``
        (``command_timeout``, ``timeout``: see :mod:`conveyor_engine.connections`).
        """
        extra = {"ssl": ssl, **pool_options} if ssl is not None else dict(pool_options)
        pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, **extra
        )
        store = cls(pool)
        if apply_migrations:
            await store.migrate()
        return store

    async def ping(self, timeout: float) -> None:
        """``SELECT 1`` on a pooled connection within ``timeout`` seconds (a liveness probe);
        raises asyncpg's errors or ``TimeoutError``."""
        await self._pool.fetchval("SELECT 1", timeout=timeout)

    async def close(self) -> None:
        """Close every connection of the pool."""
        await self._pool.close()

    async def migrate(self) -> list[int]:
        """Apply pending schema migrations; return the versions applied now."""
        async with self._pool.acquire() as conn:
            return await migrate(conn)
