"""Retention of finished history in PostgreSQL: what is expired, and the job that deletes it.

An execution is *expired* when it is in a final phase (``Succeeded``, ``Failed``,
``Cancelled``) and finished before the cutoff ``now - CONVEYOR_RETENTION_DAYS``; open
executions are never expired, however old. Deleting an execution deletes its tasks and
attempts with it (``ON DELETE CASCADE`` in the schema); content-addressed workflow versions
are kept (they are small and shared by runs).

The job runs in each pool's dispatcher (one worker per pool holds its lock), one batch per
dispatcher pass: a batch is one short transaction deleting at most ``batch`` executions,
picked ``FOR UPDATE SKIP LOCKED``, so it never waits on a row another transaction holds and
never holds locks for long. ``conveyor-engine retention`` runs the same job once, for every
pool, from a shell or a CronJob.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .phases import EXECUTION_FINAL, ExecutionPhase

#: Executions deleted per transaction.
DEFAULT_BATCH = 500


def retention_cutoff(now: datetime, days: float) -> datetime | None:
    """Executions finished before the returned time are expired; None when ``days`` is 0
    (retention off: history is kept forever). ``now`` is timezone-aware.

    Raises ValueError when ``days`` is negative.
    """
    if days < 0:
        raise ValueError(f"retention days must be >= 0, got {days!r}")
    if days == 0:
        return None
    return now - timedelta(days=days)


def is_expired(phase: str, finished_at: datetime | None, cutoff: datetime | None) -> bool:
    """Whether an execution in ``phase`` that finished at ``finished_at`` is expired at
    ``cutoff`` (the pure form of the SQL predicate in
    :meth:`~conveyor_engine.store.retention.RetentionQueries.delete_expired`)."""
    if cutoff is None or finished_at is None:
        return False
    return ExecutionPhase(phase) in EXECUTION_FINAL and finished_at < cutoff


@dataclass(frozen=True)
class RetentionPolicy:
    """The retention settings a dispatcher follows: ``days`` (0: off), seconds between
    looks for expired executions, and executions deleted per transaction."""

    days: float = 0.0
    interval_seconds: float = 300.0
    batch: int = DEFAULT_BATCH


def next_look(now: datetime, policy: RetentionPolicy, deleted: int) -> datetime:
    """When the dispatcher looks for expired executions again after a batch that deleted
    ``deleted``: at once (next pass) when the batch was full, else after the interval."""
    if deleted >= policy.batch:
        return now
    return now + timedelta(seconds=policy.interval_seconds)


@dataclass
class PurgeReport:
    """What one run of the job deleted: ``batches`` holds the executions deleted per batch."""

    batches: list[int] = field(default_factory=list)

    @property
    def deleted(self) -> int:
        """Executions deleted in total."""
        return sum(self.batches)


async def purge_expired(store, *, cutoff: datetime, pool: str | None = None,
                        batch: int = DEFAULT_BATCH) -> PurgeReport:
    """Delete every execution expired at ``cutoff`` (of ``pool``, or of all pools), one
    transaction of at most ``batch`` executions at a time, until a batch comes back short.

    ``store`` is a :class:`~conveyor_engine.store.Store`; raises asyncpg's errors.
    """
    report = PurgeReport()
    while True:
        deleted = await store.delete_expired(cutoff=cutoff, pool=pool, limit=batch)
        if deleted:
            report.batches.append(deleted)
        if deleted < batch:
            return report
