"""The custom resources as pydantic models (one module each), and their API coordinates.

``crds/`` holds the CRDs (the single source for the API server); these models are what the
operator reads instead of raw dicts. ``tests/unit/test_resource_schemas.py`` keeps every model
and its CRD's schema in step field by field, and a test checks every example manifest against
both.
"""

from .base import (
    API_VERSION,
    CRD_VERSION_LABEL,
    EXECUTIONS,
    GROUP,
    SCHEDULES,
    VERSION,
    WORKERPOOLS,
    WORKFLOWS,
    CamelModel,
    ConditionStatus,
    Metadata,
    StatusModel,
)
from .execution import ExecutionResource, ExecutionSpec, ExecutionStatus, TaskSummary, WorkflowRef
from .schedule import (
    ActiveRun,
    RunOutcome,
    ScheduleResource,
    ScheduleSpec,
    ScheduleStatus,
)
from .workerpool import (
    RedisRef,
    SecretKeyRef,
    WorkerPoolResource,
    WorkerPoolSpec,
    WorkerPoolStatus,
    requested_namespace,
)
from .workflow import ExecutionDefaults, WorkflowResource, WorkflowStatus, workflow_spec

__all__ = [
    "API_VERSION",
    "CRD_VERSION_LABEL",
    "EXECUTIONS",
    "GROUP",
    "SCHEDULES",
    "VERSION",
    "WORKERPOOLS",
    "WORKFLOWS",
    "ActiveRun",
    "CamelModel",
    "ConditionStatus",
    "ExecutionDefaults",
    "ExecutionResource",
    "ExecutionSpec",
    "ExecutionStatus",
    "Metadata",
    "RedisRef",
    "RunOutcome",
    "ScheduleResource",
    "ScheduleSpec",
    "ScheduleStatus",
    "SecretKeyRef",
    "StatusModel",
    "TaskSummary",
    "WorkerPoolResource",
    "WorkerPoolSpec",
    "WorkerPoolStatus",
    "WorkflowRef",
    "WorkflowResource",
    "WorkflowStatus",
    "requested_namespace",
    "workflow_spec",
]
