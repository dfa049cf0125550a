"""The status of a Workflow (pure): ``Ready`` when it compiled, else why not."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from ..reasons import ConditionReason, ConditionType
from .conditions import Condition, merge_conditions, not_ready


class Compiled(Protocol):
    """What the status shows of a compiled workflow
    (:class:`conveyor_engine.api.CompiledWorkflow`): its content hash and its tasks."""

    @property
    def content_hash(self) -> str: ...

    @property
    def tasks(self) -> Mapping[str, Any]: ...


def workflow_status(
    *,
    generation: int | None,
    workflow: Compiled | None,
    problem: str | None,
    previous: dict[str, Any] | None,
    now: datetime,
    store_problem: str | None = None,
    waiting: str | None = None,
    waiting_reason: str = ConditionReason.TASK_TYPE_UNAVAILABLE,
) -> dict[str, Any]:
    """Status of a Workflow: ``Ready`` when it compiled, else ``Ready=False, InvalidSpec``.

    ``problem`` is the compiler's message (it names the task and field at fault).
    ``store_problem`` says the current generation could not be registered because a store
    (Redis, PostgreSQL) is unreachable: ``Ready=False, StoreUnavailable`` (not stalled: it
    is retried), and no content hash, since the one shown would be an older generation's.
    ``waiting`` says which task types no running worker of their pool has yet:
    ``Ready=False, TaskTypeUnavailable`` (not stalled: it is compiled again when the pool's
    workers advertise); ``waiting_reason`` says what it waits for instead
    (``ChildWorkflowNotFound``: a child Workflow not applied yet).
    """
    previous = previous or {}
    if store_problem is not None:
        desired = not_ready(ConditionReason.STORE_UNAVAILABLE,
                            f"waiting for the store: {store_problem}", stalled=False)
        extra = {"contentHash": None, "taskCount": None}
    elif waiting is not None:
        desired = not_ready(waiting_reason, waiting, stalled=False)
        extra = {"contentHash": None, "taskCount": None}
    elif workflow is not None:
        version = workflow.content_hash[:19]
        desired = [Condition(ConditionType.READY, True, ConditionReason.COMPILED,
                             f"{len(workflow.tasks)} task(s), version {version}")]
        extra = {"contentHash": workflow.content_hash, "taskCount": len(workflow.tasks)}
    else:
        desired = not_ready(ConditionReason.INVALID_SPEC, problem or "invalid spec",
                            stalled=True)
        extra = {"contentHash": None, "taskCount": None}
    return {
        "observedGeneration": generation,
        **extra,
        "conditions": merge_conditions(previous.get("conditions"), desired,
                                       generation=generation, now=now),
    }
