"""The ``Workflow`` resource. Its spec is the engine's task language
(:class:`conveyor_engine.model.WorkflowSpec`): the operator hands it to the engine to compile
as it is, so the engine words every problem in it."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from conveyor_engine.model import WorkflowSpec

from .base import GROUP, VERSION, CamelModel, ConditionStatus, Metadata, StatusModel

#: Keys of a Workflow's spec that are the operator's, not the engine's task language: they
#: are taken out before the spec is compiled, so changing them makes no new version.
OPERATOR_SPEC_KEYS = ("executionDefaults",)


class ExecutionDefaults(CamelModel):
    """``Workflow.spec.executionDefaults``: what this workflow's Executions get unless they
    set it themselves."""

    ttl_seconds_after_finished: int | None = Field(None, ge=0, le=2**31 - 1)


class WorkflowResourceSpec(WorkflowSpec):
    """A Workflow's spec: the engine's :class:`WorkflowSpec` plus the operator's
    ``executionDefaults``."""

    execution_defaults: ExecutionDefaults | None = None


class WorkflowStatus(StatusModel):
    """``Workflow.status``: the compiled version's hash and size, and ``Ready``."""

    observed_generation: int | None = None
    content_hash: str | None = None
    task_count: int | None = None
    conditions: list[ConditionStatus] = Field(default_factory=list, max_length=8)


class WorkflowResource(CamelModel):
    """A ``Workflow`` manifest."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(pattern=f"^{GROUP}/{VERSION}$")
    kind: str = Field(pattern="^Workflow$")
    metadata: Metadata
    spec: WorkflowResourceSpec
    status: WorkflowStatus | None = None


def workflow_spec(body: dict[str, Any]) -> dict[str, Any]:
    """The raw ``spec`` of a Workflow object, for :meth:`conveyor_engine.api.Engine.register`
    (which validates it against :class:`WorkflowSpec` and names each field at fault),
    without the operator's own keys (:data:`OPERATOR_SPEC_KEYS`)."""
    spec = dict(body.get("spec") or {})
    for key in OPERATOR_SPEC_KEYS:
        spec.pop(key, None)
    return spec

