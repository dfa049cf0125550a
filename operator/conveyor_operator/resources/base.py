"""What every custom resource shares: API coordinates, the model base, metadata, conditions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

GROUP = "conveyor.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
WORKFLOWS = "workflows"
EXECUTIONS = "executions"
WORKERPOOLS = "workerpools"
SCHEDULES = "schedules"
#: Bumped when a CRD schema changes incompatibly; the operator checks it at start.
CRD_VERSION_LABEL = "conveyor.dev/crd-version"


class CamelModel(BaseModel):
    """A part of a resource: camelCase on the wire, snake_case in Python, no unknown keys.

    Specs forbid unknown keys (the CRD prunes them, so one here is a model out of step).
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class StatusModel(BaseModel):
    """A status as the operator reads back what it wrote: camelCase, unknown keys ignored
    (a status written by another release may carry keys this one no longer knows)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @classmethod
    def read(cls, data: Mapping[str, Any] | None) -> Self:
        """The status in ``data`` (a resource's ``status``, possibly empty); never raises.

        A key whose value does not fit (a status written by hand, or by another release) is
        read as absent, so a handler never fails on what it reads back.
        """
        data = dict(data or {})
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            bad = {err["loc"][0] for err in exc.errors() if err["loc"]}
            return cls.model_validate({k: v for k, v in data.items() if k not in bad})


class Metadata(BaseModel):
    """The parts of ``metadata`` the operator reads (others are allowed and ignored)."""

    model_config = ConfigDict(extra="allow")

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None


class ConditionStatus(StatusModel):
    """One entry of ``status.conditions`` (Kubernetes API conventions, metav1.Condition)."""

    type: str = Field(max_length=316)
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(max_length=1024)
    message: str | None = Field(None, max_length=32768)
    last_transition_time: str
    observed_generation: int | None = Field(None, ge=0)
