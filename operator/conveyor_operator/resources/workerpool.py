"""The ``WorkerPool`` resource: a set of engine workers (one Deployment) serving one queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from conveyor_engine.egress import parse_cidr

from .base import GROUP, VERSION, CamelModel, ConditionStatus, Metadata, StatusModel


class SecretKeyRef(BaseModel):
    """A key of a Secret in the pool's namespace."""

    model_config = ConfigDict(extra="forbid")

    name: str
    key: str


class LocalObjectRef(BaseModel):
    """A named object in the pool's namespace (Kubernetes ``LocalObjectReference``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=253)


class MountedSecret(BaseModel):
    """A Secret the pool's workers may read (``spec.secrets[]``), mounted read-only."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    optional: bool = False


def _cidr(value: str) -> str:
    # The worker's own parser, so a range the operator accepts is one the worker accepts
    # (otherwise the pool's workers would stop at start with a settings error).
    parse_cidr(value, "CIDR")
    return value.strip()


#: A CIDR (``10.0.0.0/8``, ``fd00::/8``); a bad one is an InvalidSpec naming its index.
Cidr = Annotated[str, AfterValidator(_cidr)]


class Egress(BaseModel):
    """``spec.egress``: CIDR ranges http tasks may (``allow``) or may not (``deny``) reach,
    on top of the default guard against link-local and metadata addresses
    (:mod:`conveyor_engine.egress`); deny wins over allow. The worker gets them as
    ``CONVEYOR_EGRESS_ALLOW`` / ``CONVEYOR_EGRESS_DENY``. A bad CIDR raises ``ValueError``
    at ``egress.allow.<index>`` (``InvalidSpec`` on the pool)."""

    model_config = ConfigDict(extra="forbid")

    allow: list[Cidr] = Field(default_factory=list, max_length=64)
    deny: list[Cidr] = Field(default_factory=list, max_length=64)


class RedisRef(CamelModel):
    """Where the pool's Redis URL comes from (default: the operator's own Redis)."""

    url_secret_ref: SecretKeyRef | None = None


class WorkerPoolSpec(CamelModel):
    """``WorkerPool.spec`` with defaults applied; the CRD describes each field.

    ``target_per_replica`` defaults to ``concurrency`` (a worker is "full" when it has as
    many outstanding tasks as it runs at once). The defaults of ``minReplicas`` (1) and
    ``maxReplicas`` (10) are repeated in the CRD's validation rule.
    """

    image: str | None = None
    image_pull_policy: str | None = None
    image_pull_secrets: list[LocalObjectRef] = Field(default_factory=list, max_length=16)
    secrets: list[MountedSecret] = Field(default_factory=list, max_length=64)
    egress: Egress = Field(default_factory=Egress)
    namespace: str | None = Field(None, max_length=63)
    concurrency: int = Field(32, ge=1, le=10_000)
    min_replicas: int = Field(1, ge=0, le=1000)
    max_replicas: int = Field(10, ge=1, le=1000)
    target_per_replica: int | None = Field(None, ge=1)
    scale_up_stabilization_seconds: int = Field(0, ge=0, le=3600)
    scale_down_stabilization_seconds: int = Field(60, ge=0, le=3600)
    shutdown_grace_seconds: int = Field(25, ge=0, le=3600)
    service_account_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[dict[str, Any]] = Field(default_factory=list)
    resources: dict[str, Any] = Field(default_factory=dict)
    env: list[dict[str, Any]] = Field(default_factory=list)
    redis: RedisRef = Field(default_factory=RedisRef)

    @model_validator(mode="after")
    def _bounds(self) -> WorkerPoolSpec:
        if self.min_replicas > self.max_replicas:
            raise ValueError("minReplicas must not exceed maxReplicas")
        return self

    @property
    def target(self) -> int:
        """Outstanding tasks per replica that the scaler aims for."""
        return self.target_per_replica or self.concurrency


def requested_namespace(spec: Mapping[str, Any] | None, default: str) -> str:
    """The namespace a pool's raw ``spec`` asks for, else ``default`` (the operator's).

    Read from the raw spec because it is needed even when the spec as a whole is invalid
    (to clean up, or to say where nothing was applied).
    """
    return str((spec or {}).get("namespace") or default)


class ServedTaskType(BaseModel):
    """One item of ``status.taskTypes``: a task type the pool serves and who provides it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=63)
    package: str | None = Field(None, max_length=253)
    version: str | None = Field(None, max_length=128)


class WorkerPoolStatus(StatusModel):
    """``WorkerPool.status``: the pool's load, sizes, last scale and ``Ready``."""

    observed_generation: int | None = None
    queued: int | None = None
    in_flight: int | None = None
    timers_due: int | None = None
    desired_replicas: int | None = None
    current_replicas: int | None = None
    ready_replicas: int | None = None
    last_scale_time: str | None = None
    last_scale_reason: str | None = Field(None, max_length=1024)
    deployment: str | None = None
    task_types: list[ServedTaskType] = Field(default_factory=list, max_length=64)
    task_type_names: str | None = Field(None, max_length=1024)
    conditions: list[ConditionStatus] = Field(default_factory=list, max_length=8)

    def deployed_namespace(self) -> str | None:
        """The namespace of ``deployment`` (``<namespace>/<name>``), or None when unset."""
        namespace, slash, _ = (self.deployment or "").partition("/")
        return namespace if slash and namespace else None


class WorkerPoolResource(CamelModel):
    """A ``WorkerPool`` manifest (cluster-scoped)."""

    model_config = ConfigDict(extra="ignore")

    api_version: str = Field(pattern=f"^{GROUP}/{VERSION}$")
    kind: str = Field(pattern="^WorkerPool$")
    metadata: Metadata
    spec: WorkerPoolSpec
    status: WorkerPoolStatus | None = None
