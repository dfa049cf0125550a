"""The operator's settings: one validated object, read from ``CONVEYOR_*`` variables."""

from __future__ import annotations

from pydantic import Field

from conveyor_engine.settings import EngineSettings


class OperatorSettings(EngineSettings):
    """Engine connection settings plus the operator's own.

    ``status_interval_seconds`` is the least time between two status writes of one
    Execution: a busy execution costs at most one API write per interval.
    """

    status_interval_seconds: float = Field(0.5, ge=0.05, le=60.0)
    resync_interval_seconds: float = Field(30.0, ge=1.0, le=3600.0)
    workflow_retry_seconds: float = Field(
        2.0, ge=0.1, le=300.0,
        description="How often an Execution waiting for its Workflow checks again.")
    namespace: str | None = Field(
        None, description="Watch only this namespace (default: all namespaces).")
    kubeconfig: str | None = Field(None, description="Kubeconfig file (default: in-cluster).")
    health_port: int = Field(0, ge=0, le=65535,
                             description="kopf's liveness endpoint /healthz; 0 disables it.")
    worker_image: str = Field("ghcr.io/conveyor-dev/conveyor:0.1.0",
                              description="Image of pool workers unless a pool names one.")
    worker_namespace: str = Field("default",
                                  description="Namespace of pool Deployments by default.")
    worker_connection_secret: str | None = Field(
        None, description="Secret (keys redis-url, database-url) that worker pods read; "
        "without it workers get the operator's own URLs as plain values (the sandbox).")
    pool_check_seconds: float = Field(
        5.0, gt=0, le=300, description="Pools are re-checked at least this often.")
    timer_horizon_seconds: float = Field(
        30.0, ge=0, le=3600, description="Timers due within this count as pool load.")
