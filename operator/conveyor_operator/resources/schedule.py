"""The ``Schedule`` resource: Executions of a Workflow created on a cron schedule.

Field names follow Kubernetes CronJob (batch/v1) where it has the field: ``schedule``,
``timeZone``, ``concurrencyPolicy``, ``startingDeadlineSeconds``, ``suspend``, and the history
limits (``successfulRunsHistoryLimit``/``failedRunsHistoryLimit`` for CronJob's
``...JobsHistoryLimit``, with its defaults 3 and 1). ``docs/schedules.md`` describes each.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from conveyor_engine.model import parse_duration

from .base import GROUP, VERSION, CamelModel, ConditionStatus, Metadata, StatusModel
from .execution import WorkflowRef

#: Longest ``jitter``: a tick may be delayed by at most this much.
MAX_JITTER = timedelta(hours=1)


class ScheduleSpec(CamelModel):
    """``Schedule.spec`` with defaults applied."""

    workflow_ref: WorkflowRef
    inputs: dict[str, Any] = Field(default_factory=dict)
    schedule: str = Field(min_length=1, max_length=256)
    time_zone: str | None = Field(None, max_length=64)
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = "Allow"
    starting_deadline_seconds: int | None = Field(None, ge=0, le=2**31 - 1)
    suspend: bool = False
    successful_runs_history_limit: int = Field(3, ge=0, le=1000)
    failed_runs_history_limit: int = Field(1, ge=0, le=1000)
    missed_run_policy: Literal["Skip", "RunOnce", "CatchUp"] = "RunOnce"
    max_catch_up: int = Field(10, ge=1, le=100)
    jitter: str | None = None
    ttl_seconds_after_finished: int | None = Field(None, ge=0, le=2**31 - 1)
    #: Copied to each run's ``spec.priority`` (the Execution's range).
    priority: int | None = Field(None, ge=-1000, le=1000)

    @field_validator("jitter")
    @classmethod
    def _jitter(cls, value: str | None) -> str | None:
        if value is not None and parse_duration(value, "jitter") > MAX_JITTER:
            raise ValueError(f"jitter: {value!r} is longer than 1h")
        return value

    @property
    def jitter_delta(self) -> timedelta:
        """``jitter`` as a ``timedelta`` (zero when unset)."""
        return parse_duration(self.jitter, "jitter") if self.jitter else timedelta(0)


class ActiveRun(StatusModel):
    """One open Execution this Schedule created (``status.active[]``)."""

    name: str
    scheduled_time: str | None = None


class RunOutcome(StatusModel):
    """``status.lastOutcome``: the most recently finished run this Schedule created."""

    name: str
    phase: str
    scheduled_time: str | None = None
    finished_at: str | None = None


class ScheduleStatus(StatusModel):
    """``Schedule.status``: what was decided, what runs, what came of it, and ``Ready``."""

    observed_generation: int | None = None
    last_schedule_time: str | None = None
    last_tick_time: str | None = None
    next_schedule_time: str | None = None
    last_successful_time: str | None = None
    last_outcome: RunOutcome | None = None
    active: list[ActiveRun] = Field(default_factory=list, max_length=20)
    conditions: list[ConditionStatus] = Field(default_factory=list, max_length=8)


class ScheduleResource(CamelModel):
    """A ``Schedule`` manifest."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(pattern=f"^{GROUP}/{VERSION}$")
    kind: str = Field(pattern="^Schedule$")
    metadata: Metadata
    spec: ScheduleSpec
    status: ScheduleStatus | None = None
