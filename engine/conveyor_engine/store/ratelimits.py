"""Rate-limit declarations in PostgreSQL: one global limit per key, checked across workflows.

A workflow's ``rateLimits`` are recorded when it is registered, by (key, workflow name).
A declaration that contradicts another workflow's for the same key is refused (the caller
raises it as a compile problem naming both); a new version of the same workflow replaces
its own declarations. Workers look a key's limit up here when their workflow does not
declare it itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
import orjson

from ..model import RateLimitSpec
from ..ratelimits import conflict_message, same_limit
from .base import StoreBase

_LOCK_KEYS = "SELECT pg_advisory_xact_lock(hashtext('conveyor-rate-limit:' || k)) " \
             "FROM unnest($1::text[]) AS k ORDER BY k"
_OTHERS = """SELECT key, workflow_name, spec FROM rate_limits
             WHERE key = ANY($1::text[]) AND workflow_name <> $2 ORDER BY key, workflow_name"""
_FORGET = "DELETE FROM rate_limits WHERE workflow_name = $1 AND NOT (key = ANY($2::text[]))"
_DECLARE = """
    INSERT INTO rate_limits (key, workflow_name, spec) SELECT * FROM
        unnest($1::text[], $2::text[], $3::jsonb[])
    ON CONFLICT (key, workflow_name) DO UPDATE SET spec = EXCLUDED.spec, updated_at = now()"""
_LIMIT = "SELECT spec FROM rate_limits WHERE key = $1 ORDER BY updated_at DESC LIMIT 1"


class RateLimitQueries(StoreBase):
    """Rate-limit declarations (see :class:`~.store.Store`)."""

    async def declare_rate_limits(
        self, workflow: str, specs: Sequence[RateLimitSpec]
    ) -> list[tuple[int, str]]:
        """Record ``workflow``'s declarations, unless one contradicts another workflow's.

        Returns ``(index, message)`` per contradicting declaration (then nothing is
        recorded); an empty list when they were recorded. Declarations of one key are
        serialised with a transaction-scoped advisory lock, so two workflows registered at
        once cannot both record different limits.
        """
        unique = list({s.key: s for s in reversed(specs)}.values())  # the first of each key
        keys = sorted({s.key for s in specs})

        async def work(conn: asyncpg.Connection) -> list[tuple[int, str]]:
            if keys:
                await conn.execute(_LOCK_KEYS, keys)
            problems = []
            for row in await conn.fetch(_OTHERS, keys, workflow):
                theirs = RateLimitSpec.model_validate(row["spec"])
                for i, mine in enumerate(specs):
                    if mine.key == row["key"] and not same_limit(mine, theirs):
                        problems.append((i, conflict_message(mine, workflow, theirs,
                                                             row["workflow_name"])))
            if problems:
                return sorted(set(problems))
            await conn.execute(_FORGET, workflow, keys)
            if unique:
                await conn.execute(
                    _DECLARE, [s.key for s in unique], [workflow] * len(unique),
                    [s.model_dump(mode="json", by_alias=True, exclude_none=True)
                     for s in unique])
            return []

        return await self._in_transaction(work)

    async def rate_limit(self, key: str) -> RateLimitSpec | None:
        """The declared limit of ``key`` (all declarations agree), or None."""
        spec = await self._pool.fetchval(_LIMIT, key)
        if spec is None:
            return None
        return RateLimitSpec.model_validate(orjson.loads(spec) if isinstance(spec, str)
                                            else spec)
