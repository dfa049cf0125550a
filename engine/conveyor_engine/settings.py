"""The engine's settings: one validated object per process, read from ``CONVEYOR_*``.

A bad value stops start-up with a message naming the environment variable
(see :func:`load_settings`), never a crash loop with a stack trace.
"""

from __future__ import annotations

import socket
from typing import TypeVar

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .egress import EgressPolicy, parse_cidr, split_cidr_list


class SettingsError(ValueError):
    """The environment holds an invalid value; the message names each ``CONVEYOR_*`` variable.

    Commands print the message and exit with code 2 (a usage error), without a traceback.
    """


class EngineSettings(BaseSettings):
    """Settings of an engine worker (and of anything else using the engine).

    Every field is read from ``CONVEYOR_<FIELD>`` (for example ``CONVEYOR_REDIS_URL``).
    """

    model_config = SettingsConfigDict(env_prefix="CONVEYOR_", extra="ignore")

    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", pattern=r"^rediss?(\+sentinel|\+cluster)?://",
        description="redis[s]://host:port/db, redis[s]+sentinel://h1:26379,h2:26379/master/db "
                    "or redis[s]+cluster://h1:6379,h2:6379 (see conveyor_engine.connections).",
    )
    database_url: str = Field(
        "postgresql://postgres@127.0.0.1:5432/conveyor", pattern=r"^postgres(ql)?://"
    )
    key_prefix: str = Field(
        "conveyor", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Prefix of every Redis key, so installations can share a server.",
    )
    pool: str = Field("default", pattern=r"^[a-z]([-a-z0-9_]{0,61}[a-z0-9])?$")
    worker_id: str = Field(default_factory=lambda: socket.gethostname())
    concurrency: int = Field(32, ge=1, le=10_000, description="Tasks run at once per process.")
    lease_seconds: float = Field(
        30.0, ge=1.0, le=3600.0,
        description="A claim not renewed for this long is reclaimed by another worker.",
    )
    lock_lease_seconds: float = Field(
        30.0, ge=1.0, le=3600.0,
        description="Lease of a lock a task holds (renewed with the claims' leases); a "
                    "holder not renewed for this long loses the lock to the next acquirer.")
    shutdown_grace_seconds: float = Field(25.0, ge=0.0, le=3600.0)
    batch_size: int = Field(256, ge=1, le=10_000, description="Outcomes committed per batch.")
    dispatch_interval_seconds: float = Field(
        0.25, gt=0.0, le=60.0, description="How often due timers and lost dispatches are checked."
    )
    dispatch_grace_seconds: float = Field(
        10.0, gt=0.0, le=3600.0,
        description="A task recorded ready this long without being claimed is dispatched again.",
    )
    max_deliveries: int = Field(
        5, ge=1, le=1000, description="Deliveries of one attempt before it is dead-lettered."
    )
    max_output_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    metrics_port: int = Field(0, ge=0, le=65535, description="0 disables the metrics server.")
    redis_ca_cert: str | None = Field(
        None, description="PEM CA to verify a rediss:// server with.", repr=False)
    database_ca_cert: str | None = Field(
        None, description="PEM CA to verify the PostgreSQL server with.", repr=False)
    migrate_on_start: bool = True
    # -- limits and timeouts (issue 9; docs/guarantees.md "Limits and timeouts") --
    http_timeout_seconds: float = Field(
        60.0, gt=0.0, le=7 * 24 * 3600.0,
        description="Timeout of each network operation (connect, read, write) of an http "
        "task that sets no timeout of its own; a task's timeout replaces it.")
    max_inputs_bytes: int = Field(
        1024 * 1024, ge=1024, le=64 * 1024 * 1024,
        description="Largest inputs of one execution, serialised as JSON; submit refuses more.")
    max_workflow_depth: int = Field(
        10, ge=1, le=100,
        description="Deepest nesting of sub-workflows (a child's child ...); a workflow task "
        "that would go deeper fails, naming the chain.")
    child_recheck_seconds: float = Field(
        30.0, ge=0.5, le=3600,
        description="How often a workflow task waiting for its child re-checks it (the "
        "safety net: the child's finish wakes it at once).")
    workflow_cache_size: int = Field(
        256, ge=1, le=100_000,
        description="Compiled workflow versions kept in process memory (least recently used "
        "are dropped; Redis and PostgreSQL still hold them).")
    redis_timeout_seconds: float = Field(
        10.0, ge=2.0, le=600.0,
        description="Socket timeout of Redis calls (above the 1 s blocking read), so a "
                    "black-holed Redis is noticed; also the connect timeout.")
    database_timeout_seconds: float = Field(
        30.0, ge=1.0, le=3600.0,
        description="Timeout of one PostgreSQL statement (asyncpg command_timeout) and of "
                    "connecting, so a black-holed PostgreSQL is noticed.")
    dependency_check_seconds: float = Field(
        2.0, gt=0.0, le=300.0,
        description="How often Redis and PostgreSQL are probed; an outage ends when a probe "
                    "answers and no call failed for this long.")
    # -- secrets (issue 11 item 4; docs/task-types.md "Secrets") --
    secrets_dir: str | None = Field(
        None, description="Directory of the Secrets the pool mounts (<dir>/<secret>/<key>); "
                          "unset or absent: none. Set by the operator's Deployment.")
    secrets_refresh_seconds: float = Field(
        10.0, ge=0.0, le=3600.0,
        description="How often the mounted Secrets are looked at again (Kubernetes updates "
                    "them in place); 0: before every attempt.")
    # -- retention (issue 9; docs/guarantees.md "Retention") --
    retention_days: float = Field(
        0.0, ge=0.0, le=36500.0,
        description="Executions finished more than this many days ago are deleted from "
                    "PostgreSQL with their tasks and attempts, in batches, by each pool's "
                    "dispatcher; 0 (the default) keeps history forever.")
    retention_interval_seconds: float = Field(
        300.0, gt=0.0, le=86400.0,
        description="How often a pool's dispatcher looks for expired executions (while a "
                    "batch comes back full, the next batch follows on the next pass).")
    retention_batch_size: int = Field(
        500, ge=1, le=10_000, description="Executions deleted per retention transaction.")
    # -- the outbound guard of http tasks (issue 11 item 5; conveyor_engine.egress) --
    egress_allow: str = Field(
        "", description="CIDR ranges http tasks may reach even where the guard refuses by "
        "default (comma- or space-separated); the operator sets it from spec.egress.allow.")
    egress_deny: str = Field(
        "", description="CIDR ranges http tasks may never reach; wins over egress_allow. "
        "The operator sets it from spec.egress.deny.")

    @field_validator("egress_allow", "egress_deny")
    @classmethod
    def _cidr_list(cls, value: str) -> str:
        items = split_cidr_list(value)
        for i, item in enumerate(items, start=1):
            parse_cidr(item, f"item {i}")
        return ",".join(items)

    def egress_policy(self) -> EgressPolicy:
        """The guard's policy from ``egress_allow`` and ``egress_deny`` (validated already)."""
        return EgressPolicy.parse(split_cidr_list(self.egress_allow),
                                  split_cidr_list(self.egress_deny))


S = TypeVar("S", bound="EngineSettings")


def load_settings(cls: type[S] = EngineSettings, **overrides: object) -> S:  # type: ignore[assignment]
    """Build ``cls`` (:class:`EngineSettings` or a subclass) from the environment.

    ``overrides`` replace values read from the environment.

    Raises :class:`SettingsError` whose message names each offending
    ``CONVEYOR_*`` variable and what was expected.
    """
    try:
        return cls(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = ["invalid settings:"]
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"  CONVEYOR_{field.upper()}: {err['msg']} (got {err.get('input')!r})")
        raise SettingsError("\n".join(lines)) from None
