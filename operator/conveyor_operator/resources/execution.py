"""The ``Execution`` resource: one run of a Workflow with its inputs."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from conveyor_engine.phases import ExecutionPhase, TaskPhase

from .base import GROUP, VERSION, CamelModel, ConditionStatus, Metadata, StatusModel


class WorkflowRef(CamelModel):
    """Reference to a Workflow in the Execution's namespace."""

    name: str = Field(min_length=1, max_length=253)


class ExecutionSpec(CamelModel):
    """An Execution's spec: which workflow, with which inputs, and its lifecycle.

    ``workflowRef`` and ``inputs`` are immutable once created (the CRD's rule); the
    lifecycle fields and ``ttlSecondsAfterFinished`` may change (:mod:`..lifecycle`).
    """

    workflow_ref: WorkflowRef
    inputs: dict[str, Any] = Field(default_factory=dict)
    #: Seconds after finishing when the operator deletes the object (batch/v1 Job's field
    #: of the same name); None: the Workflow's default, else the Namespace's, else kept
    #: (:mod:`..ttl`).
    ttl_seconds_after_finished: int | None = Field(None, ge=0, le=2**31 - 1)
    #: No task starts while True; running ones finish (batch/v1 Job's ``suspend``).
    suspend: bool = False
    #: True cancels the run and keeps the object (its history stays visible).
    cancel: bool = False
    #: How many times the run is to be retried from its failed step; raise it by one to
    #: retry a Failed or Cancelled run once. Never lowered (the CRD's rule).
    retry: int = Field(0, ge=0, le=2**31 - 1)
    #: Priority of the run's tasks (:mod:`conveyor_engine.priorities`), read at submission.
    priority: int = Field(0, ge=-1000, le=1000)
    #: Seconds the run's main tasks may take from admission (overrides the Workflow's);
    #: enforced by the engine, fixed at submission (the CRD's rule). None: the Workflow's.
    active_deadline_seconds: int | None = Field(None, ge=1, le=31_622_400)


class ChildSummary(StatusModel):
    """``status.tasks[].child``: the engine id and phase of a ``workflow`` task's child."""

    execution_id: str
    phase: ExecutionPhase


class TaskSummary(StatusModel):
    """One task of ``Execution.status.tasks`` (at most 50 are kept; PostgreSQL has all)."""

    name: str
    phase: TaskPhase
    attempts: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    message: str | None = Field(None, max_length=256)
    #: The engine's CamelCase reason for the task's state (``WorkerLost``), when it has one.
    reason: str | None = Field(None, max_length=128)
    #: The child run of a ``workflow`` task (an engine execution, not an Execution object).
    child: ChildSummary | None = None


class ExecutionStatus(StatusModel):
    """``Execution.status``: the engine's recorded state, mirrored by the operator."""

    observed_generation: int | None = None
    phase: ExecutionPhase | None = None
    progress: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration: str | None = None
    message: str | None = Field(None, max_length=1024)
    execution_id: str | None = None
    workflow_hash: str | None = None
    tasks: list[TaskSummary] = Field(default_factory=list, max_length=50)
    tasks_omitted: int | None = None
    retries: int | None = None
    #: The workflow's declared outputs once the run Succeeded (values over 512 bytes of
    #: JSON are cut, with a note; the engine keeps them whole).
    outputs: dict[str, Any] | None = None
    conditions: list[ConditionStatus] = Field(default_factory=list, max_length=8)


class ExecutionResource(CamelModel):
    """An ``Execution`` manifest."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(pattern=f"^{GROUP}/{VERSION}$")
    kind: str = Field(pattern="^Execution$")
    metadata: Metadata
    spec: ExecutionSpec
    status: ExecutionStatus | None = None
