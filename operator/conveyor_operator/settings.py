"""The operator's settings: one validated object, read from ``CONVEYOR_*`` variables."""

from __future__ import annotations

from pydantic import Field, model_validator

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
        description="First re-check of an Execution waiting for its Workflow or pool; "
        "then doubling up to wait_recheck_max_seconds (Workflow and pool changes re-check "
        "at once).")
    store_retry_max_seconds: float = Field(
        5.0, gt=0, le=300.0,
        description="Longest backoff before retrying a Workflow whose store (Redis, "
        "PostgreSQL) was unreachable; retries start at 0.5 s and double.")
    wait_recheck_max_seconds: float = Field(
        60.0, ge=0.1, le=3600.0,
        description="Longest interval between two re-checks of a waiting Execution.")
    namespace: str | None = Field(
        None, description="Watch only this namespace (default: all namespaces).")
    kubeconfig: str | None = Field(None, description="Kubeconfig file (default: in-cluster).")
    health_port: int = Field(0, ge=0, le=65535,
                             description="Port of /healthz and /readyz; 0 disables them.")
    worker_image: str = Field("ghcr.io/conveyor-dev/conveyor:0.1.0",
                              description="Image of pool workers unless a pool names one.")
    worker_namespace: str = Field("default",
                                  description="Namespace of pool Deployments by default.")
    worker_connection_secret: str | None = Field(
        None, description="Secret (keys redis-url, database-url) that worker pods read; "
        "without it workers get the operator's own URLs as plain values (the sandbox).")
    pool_check_seconds: float = Field(
        5.0, gt=0, le=300, description="Pools are re-checked at least this often.")
    pool_degraded_after_seconds: float = Field(
        30.0, ge=0, le=3600, description="A pool whose Deployment has had fewer ready "
        "workers than replicas for this long says Degraded=True (starting workers are not "
        "ready for a few seconds on every scale-up).")
    timer_horizon_seconds: float = Field(
        30.0, ge=0, le=3600, description="Timers due within this count as pool load.")
    leader_election: bool = Field(
        True, description="Hold a coordination.k8s.io/v1 Lease so exactly one operator "
        "process reconciles; others wait as standbys.")
    lease_name: str = Field("conveyor-operator", min_length=1,
                            description="Name of the leader-election Lease.")
    lease_namespace: str | None = Field(
        None, description="Namespace of the Lease (default: $POD_NAMESPACE, else the "
        "watched namespace, else default).")
    lease_duration_seconds: float = Field(
        15.0, ge=1.0, le=300.0,
        description="A standby takes over this long after the leader's last renewal.")
    renew_deadline_seconds: float = Field(
        10.0, gt=0, le=300.0,
        description="A leader that has not renewed for this long exits (shorter than the "
        "lease duration).")
    retry_period_seconds: float = Field(
        2.0, gt=0, le=60.0, description="Pace of lease renewals and of standby checks.")

    watch_timeout_seconds: int = Field(
        300, ge=1, le=3600,
        description="The API server ends each watch after this long (timeoutSeconds) and "
        "kopf lists and watches again: a healthy watch is never silent for longer.")
    watch_stall_seconds: float = Field(
        600.0, ge=0, le=86400.0,
        description="/healthz fails when a watch has been silent this long (0: never); "
        "keep it above watch_timeout_seconds.")
    clock_file: str | None = Field(
        None, description="For tests only: a JSON file that sets the time Schedules see "
        "(conveyor_operator.clock); never set it in a cluster.")

    @model_validator(mode="after")
    def _lease_timings(self) -> OperatorSettings:
        """client-go's rule: retry period < renew deadline < lease duration, so a leader
        stops acting before any standby may take over."""
        if not (self.retry_period_seconds < self.renew_deadline_seconds
                < self.lease_duration_seconds):
            raise ValueError(
                "expected retry_period_seconds < renew_deadline_seconds < "
                f"lease_duration_seconds, got {self.retry_period_seconds}, "
                f"{self.renew_deadline_seconds}, {self.lease_duration_seconds}")
        return self
