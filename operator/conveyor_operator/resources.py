"""The custom resources' shapes as pydantic models, and their API coordinates.

``crds/`` holds the CRDs (the single source for the API server); these models are what the
operator reads. A test checks every example manifest against both, so they cannot drift.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from conveyor_engine.model import WorkflowSpec

GROUP = "conveyor.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
WORKFLOWS = "workflows"
EXECUTIONS = "executions"
#: Bumped when a CRD schema changes incompatibly; the operator checks it at start.
CRD_VERSION_LABEL = "conveyor.dev/crd-version"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class Metadata(BaseModel):
    """The parts of ``metadata`` the operator reads (others are allowed and ignored)."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None


class WorkflowRef(_Model):
    """Reference to a Workflow in the Execution's namespace."""

    name: str = Field(min_length=1, max_length=253)


class ExecutionSpec(_Model):
    """An Execution's spec: which workflow, with which inputs. Immutable once created."""

    workflow_ref: WorkflowRef
    inputs: dict[str, Any] = Field(default_factory=dict)


class WorkflowResource(_Model):
    """A ``Workflow`` manifest (status ignored)."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    api_version: str = Field(pattern=f"^{GROUP}/{VERSION}$")
    kind: str = Field(pattern="^Workflow$")
    metadata: Metadata
    spec: WorkflowSpec


class ExecutionResource(_Model):
    """An ``Execution`` manifest (status ignored)."""

    model_config = ConfigDict(extra="ignore", alias_generator=to_camel, populate_by_name=True)

    api_version: str = Field(pattern=f"^{GROUP}/{VERSION}$")
    kind: str = Field(pattern="^Execution$")
    metadata: Metadata
    spec: ExecutionSpec
