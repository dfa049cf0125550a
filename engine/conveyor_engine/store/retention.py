"""Deleting expired history (the retention job's SQL; what is expired: :mod:`..retention`)."""

from __future__ import annotations

from datetime import datetime

from .base import StoreBase


def _final_literals() -> str:
    # Literal phases (not a parameter) so the partial index executions_finished applies
    # (see base.phase_literal for why a parameter would not do).
    from ..phases import EXECUTION_FINAL, sql_list
    return ", ".join(f"'{p}'" for p in sql_list(EXECUTION_FINAL))


def _delete_sql(of_pool: bool) -> str:
    where = "pool = $3 AND " if of_pool else ""
    return f"""DELETE FROM executions WHERE id IN (
                   SELECT id FROM executions
                   WHERE {where}phase IN ({_final_literals()}) AND finished_at < $1
                   ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)"""


_DELETE_OF_POOL = _delete_sql(True)
_DELETE_ANY = _delete_sql(False)


class RetentionQueries(StoreBase):
    """The retention job's one statement."""

    async def delete_expired(self, *, cutoff: datetime, pool: str | None, limit: int) -> int:
        """Delete at most ``limit`` executions in a final phase that finished before
        ``cutoff`` (of ``pool``, or of every pool when None), oldest first, with their
        tasks and attempts (``ON DELETE CASCADE``); return how many were deleted.

        One statement, so one short transaction; rows locked by others are skipped
        (``FOR UPDATE SKIP LOCKED``), never waited on.
        """
        if pool is None:
            status = await self._pool.execute(_DELETE_ANY, cutoff, limit)
        else:
            status = await self._pool.execute(_DELETE_OF_POOL, cutoff, limit, pool)
        return int(status.split()[-1])
