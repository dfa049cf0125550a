"""The ``wait`` task type: a durable pause that holds no worker slot.

Waiting is done by a timer recorded in PostgreSQL (see :class:`~.base.Suspended`), not by
sleeping, so a wait of hours costs nothing and survives worker restarts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.alias_generators import to_camel

from ..model import parse_duration
from .base import Outcome, Succeeded, Suspended, TaskContext, TaskType

#: Longest wait: a year and a day keeps every timer far inside what timestamps can hold.
MAX_WAIT = timedelta(days=366)


class WaitParams(BaseModel):
    """Parameters of a ``wait`` task.

    ``duration``: a Go duration string (``"30s"``, ``"1h30m"``), >= 0, parsed by
    :func:`~conveyor_engine.model.parse_duration`; an invalid one raises a
    ``ValidationError`` whose message names ``duration``.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    duration: str

    @field_validator("duration")
    @classmethod
    def _duration(cls, value: str) -> str:
        if parse_duration(value, "duration") > MAX_WAIT:
            raise ValueError(f"duration: {value!r} is longer than the limit of 366 days")
        return value

    @property
    def delta(self) -> timedelta:
        """The duration as a ``timedelta``."""
        return parse_duration(self.duration, "duration")


class WaitTask(TaskType):
    """Pause the workflow branch for ``duration``.

    First run (``ctx.resumed_from`` is None): returns ``Suspended(until=now + duration)``
    with a timezone-aware UTC ``until``; the worker records a durable timer and frees its
    slot. Resumed run: returns ``Succeeded({"waitedSeconds": float})``, the configured
    duration in seconds (not wall time measured across the suspension, which would include
    dispatch delays). A zero duration succeeds at once without a timer.

    ``honours_timeout`` is False: a task ``timeout`` limits work, and a wait does none.
    """

    name: ClassVar[str] = "wait"
    Params: ClassVar[type[BaseModel]] = WaitParams
    honours_timeout: ClassVar[bool] = False

    async def run(self, params: BaseModel, ctx: TaskContext) -> Outcome:
        assert isinstance(params, WaitParams)
        delta = params.delta
        if ctx.resumed_from is None and delta > timedelta(0):
            return Suspended(until=datetime.now(UTC) + delta)
        return Succeeded({"waitedSeconds": delta.total_seconds()})
