"""PostgreSQL persistence: migrations, records and the :class:`Store` (all SQL lives here)."""

from .records import (
    AttemptState,
    Claimed,
    CommitResult,
    ExecutionHeader,
    ExecutionState,
    HeldClaim,
    OutcomeRecord,
    ReadyTask,
    TaskRef,
    TaskState,
)
from .store import Store

__all__ = [
    "AttemptState",
    "Claimed",
    "CommitResult",
    "ExecutionHeader",
    "ExecutionState",
    "HeldClaim",
    "OutcomeRecord",
    "ReadyTask",
    "Store",
    "TaskRef",
    "TaskState",
]
