"""Every status the operator writes, built by pure functions of their inputs.

One module per resource (:mod:`.workflow`, :mod:`.execution`, :mod:`.workerpool`), the
conditions they share (:mod:`.conditions`), the Events announcing phase changes
(:mod:`.events`), why a pool's pods do not run (:mod:`.pods`) and the patches that write a
status (:mod:`.patch`). Nothing here does I/O; callers pass ``now`` so results are
reproducible. Reasons come from :mod:`conveyor_operator.reasons`.
"""

from .conditions import Condition, merge_conditions, not_ready, rfc3339
from .events import (
    PhaseEvent,
    lifecycle_event,
    phase_events,
    refused_event,
    ttl_annotation_event,
)
from .execution import (
    MAX_MESSAGE,
    MAX_TASK_MESSAGE,
    MAX_TASKS_IN_STATUS,
    Waiting,
    execution_status,
    format_duration,
)
from .patch import status_json_patch, status_patch
from .pods import PodTrouble, pod_trouble
from .schedule import ScheduleFacts, schedule_conditions, schedule_status, tick_event
from .workerpool import (
    DEGRADED_AFTER_SECONDS,
    PoolFacts,
    degraded_condition,
    pool_conditions,
    pool_status,
)
from .workflow import workflow_status

__all__ = [
    "DEGRADED_AFTER_SECONDS",
    "MAX_MESSAGE",
    "MAX_TASKS_IN_STATUS",
    "MAX_TASK_MESSAGE",
    "Condition",
    "PhaseEvent",
    "PodTrouble",
    "PoolFacts",
    "ScheduleFacts",
    "Waiting",
    "degraded_condition",
    "execution_status",
    "format_duration",
    "lifecycle_event",
    "merge_conditions",
    "not_ready",
    "phase_events",
    "pod_trouble",
    "pool_conditions",
    "pool_status",
    "refused_event",
    "rfc3339",
    "schedule_conditions",
    "schedule_status",
    "status_json_patch",
    "status_patch",
    "tick_event",
    "ttl_annotation_event",
    "workflow_status",
]
