"""The WorkerPool spec as the operator reads it, with defaults applied."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel


class SecretKeyRef(BaseModel):
    """A key of a Secret in the pool's namespace."""

    model_config = ConfigDict(extra="forbid")

    name: str
    key: str


class RedisRef(BaseModel):
    """Where the pool's Redis URL comes from (default: the operator's own Redis)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    url_secret_ref: SecretKeyRef | None = None


class WorkerPoolSpec(BaseModel):
    """``WorkerPool.spec``; see ``crds/workerpools.conveyor.dev.yaml`` for each field.

    ``target_per_replica`` defaults to ``concurrency`` (a worker is "full" when it has as
    many outstanding tasks as it runs at once).
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    image: str | None = None
    image_pull_policy: str | None = None
    namespace: str | None = None
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
