"""The workflow model: what a user declares, before compilation.

The shapes mirror the ``Workflow`` custom resource's ``spec`` (camelCase field names on the
wire, snake_case in Python), so the operator can fill them straight from a manifest.
Following the Kubernetes API conventions, collections of named things are lists of objects
with a ``name`` rather than maps.

Durations are Go-style duration strings (``"500ms"``, ``"30s"``, ``"1m30s"``), the form
Kubernetes users already write in ``kubectl`` flags and manifests.
"""

from __future__ import annotations

import re
from datetime import timedelta
from functools import lru_cache
from typing import Any, Literal

import durationpy
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from .inputtypes import InputType
from .retries import retry_on_problem

#: Task and input names: lowercase letters, digits, ``-`` and ``_``, starting with a letter.
#: Close to a DNS-1123 label (what Kubernetes users expect), with ``_`` allowed so names can
#: also be written as CEL identifiers (``tasks.fetch_user``).
NAME_PATTERN = r"^[a-z]([-a-z0-9_]{0,61}[a-z0-9])?$"
_NAME_RE = re.compile(NAME_PATTERN)
#: Input names: CEL identifiers (``inputs.baseUrl``), so camelCase is allowed, ``-`` is not.
INPUT_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


#: Most tasks one workflow may have. Compiling is near-linear (``bench/compile.py``), but
#: every execution writes a row per task and a worker holds the compiled workflow in
#: memory, so a bound keeps one manifest from exhausting either (issue 9). Refused by the
#: compiler as ``tasks: a workflow has at most 10000 tasks; this one has N``.
MAX_TASKS = 10_000

#: Longest backoff, timeout or wait accepted: a week, far past any sane retry and well inside
#: what timestamps (PostgreSQL, Python) can hold.
MAX_WAIT = timedelta(days=7)


@lru_cache(maxsize=1024)
def _go_duration(value: str) -> timedelta:
    """``durationpy.from_str``, once per distinct text: a stored 10,000-task workflow
    carries 20,000 backoff strings, nearly all ``"1s"`` and ``"5m"`` (failures are not
    cached: they raise)."""
    return durationpy.from_str(value)


def parse_duration(value: str, field: str) -> timedelta:
    """Parse a Go duration string (``"1m30s"``, ``"250ms"``) into a ``timedelta``.

    Follows Go's ``time.ParseDuration`` grammar (via ``durationpy``), which is what
    Kubernetes uses for duration fields. Raises ``ValueError`` naming ``field`` when the
    string does not parse or is negative.
    """
    try:
        parsed = _go_duration(value)
    except Exception as exc:  # durationpy raises its own DurationError and others
        raise ValueError(
            f"{field}: {value!r} is not a duration; expected a number with a unit such as "
            f"'500ms', '30s', '5m' or '1h30m'"
        ) from exc
    if parsed < timedelta(0):
        raise ValueError(f"{field}: {value!r} is negative; expected a duration >= 0")
    return parsed


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )


class RetryPolicy(_Model):
    """How a failed task is tried again.

    The ceiling of the wait before retry ``n`` (1-based) is ``backoff * factor**(n-1)``,
    capped at ``max_backoff``: exponential backoff as in Argo Workflows'
    ``retryStrategy.backoff``. ``jitter`` ``Full`` (default) waits a uniform random time
    in ``[0, ceiling)`` (AWS "full jitter"); ``None`` waits exactly the ceiling. An http
    task's ``Retry-After`` on 429/503 raises the wait to at least that, up to
    ``max_backoff``. ``retry_on`` (absent: every retryable failure) lists which failures
    are retried: status classes (``"5xx"``), codes (``"429"``), ``"Timeout"``,
    ``"WorkerLost"``, error type names. See :mod:`conveyor_engine.retries`.
    """

    limit: int = Field(0, ge=0, le=100, description="Retries after the first attempt.")
    backoff: str = Field("1s", description="Wait before the first retry (duration string).")
    factor: float = Field(2.0, ge=1.0, le=10.0, description="Multiplier per further retry.")
    max_backoff: str = Field("5m", description="Upper bound of any single wait.")
    jitter: Literal["Full", "None"] = Field(
        "Full", description="Full: wait a random time up to the backoff; None: exactly it.")
    retry_on: list[str] | None = Field(
        None, max_length=64, description="Failures to retry (absent: every retryable one).")

    @field_validator("retry_on", mode="before")
    @classmethod
    def _retry_on(cls, value: Any) -> Any:
        if isinstance(value, list):
            for index, entry in enumerate(value):
                problem = retry_on_problem(entry)
                if problem is not None:
                    raise ValueError(f"retryOn[{index}]: {problem}")
        return value

    @field_validator("backoff", "max_backoff")
    @classmethod
    def _duration(cls, value: str, info: Any) -> str:
        if parse_duration(value, info.field_name) > MAX_WAIT:
            raise ValueError(f"{info.field_name}: {value!r} is longer than the limit of 7 days")
        return value


class InputSpec(_Model):
    """A workflow input. Without ``default`` it is required at submission.

    ``type`` (optional) is a JSON type name (see :mod:`conveyor_engine.inputtypes`); the
    default and every value given at submission must be of that type.
    """

    name: str = Field(pattern=INPUT_NAME_PATTERN)
    type: InputType | None = None
    default: Any = None
    required: bool | None = Field(
        None, description="Defaults to True when no default is given, else False."
    )
    description: str | None = None

    @property
    def is_required(self) -> bool:
        """True when a submission must supply this input."""
        if self.required is not None:
            return self.required
        return "default" not in self.model_fields_set


#: Lock names and rate-limit keys (after rendering): printable, no spaces, commas or ``=``,
#: so a token can travel in one header field as ``name=token`` (RFC 9110 §5.5, a list).
RESOURCE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/@-]{0,127}$"
#: Most locks one task may declare (all are taken at once, or none).
MAX_LOCKS = 8


class LockUse(_Model):
    """A named lock or semaphore a task holds while it runs (``locks: [{name, limit}]``).

    ``name`` may hold ``${{ }}`` templates over ``inputs`` and upstream ``tasks``
    (rendered when the task is claimed; the result must match
    :data:`RESOURCE_NAME_PATTERN`). ``limit`` is how many holders may hold it at once
    (1: a mutex). See :mod:`conveyor_engine.locks`.
    """

    name: str = Field(min_length=1, max_length=256)
    limit: int = Field(1, ge=1, le=10_000, description="Holders at once (1: a mutex).")


class RateLimitUse(_Model):
    """A rate-limit token a task takes before it runs (``rateLimit: {key, units}``).

    The limit of ``key`` is declared once, in a workflow's ``rateLimits``; ``key`` may hold
    ``${{ }}`` templates. See :mod:`conveyor_engine.ratelimits`.
    """

    key: str = Field(min_length=1, max_length=256)
    units: int = Field(1, ge=1, le=10_000, description="Tokens this task takes.")


class RateLimitSpec(_Model):
    """A global rate limit (``rateLimits: [{key, perSecond | perMinute, burst}]``).

    Shared by every worker, pool and workflow using ``key``; every declaration of one key
    must agree (a different one is refused when the workflow is registered). ``burst``
    (default: one second's worth, at least 1) is how many tokens may be taken at once.
    """

    key: str = Field(pattern=RESOURCE_NAME_PATTERN)
    per_second: float | None = Field(None, gt=0, le=1_000_000)
    per_minute: float | None = Field(None, gt=0, le=60_000_000)
    burst: int | None = Field(None, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _one_rate(self) -> RateLimitSpec:
        if (self.per_second is None) == (self.per_minute is None):
            raise ValueError("set exactly one of perSecond and perMinute")
        return self


class ContinueOn(_Model):
    """``continueOn``: which final outcomes of a task let the run go on past it (Argo
    Workflows' ``continueOn``). ``failed: true``: a task that fails for good does not skip
    its dependents (they run, and see ``tasks.NAME.phase == "Failed"`` and
    ``tasks.NAME.error``) and does not make the run fail (see ``docs/workflows.md``)."""

    failed: bool = Field(False, description="A failure of this task lets the run go on.")


class TaskSpec(_Model):
    """One task of a workflow.

    ``params`` are type-specific (see the task type's ``Params`` model); any string in them
    may hold ``${{ expression }}`` templates. ``when`` is a bare CEL expression that must
    evaluate to a boolean; when false the task is Skipped and its dependents still run.
    """

    name: str = Field(pattern=NAME_PATTERN)
    type: str
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: list[str] = Field(default_factory=list)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    timeout: str | None = Field(None, description="Limit for one attempt (duration string).")
    when: str | None = None
    pool: str | None = Field(
        None, pattern=NAME_PATTERN, description="Worker pool for this task (default: the "
        "workflow's pool), e.g. to run heavy calls on their own workers.")
    locks: list[LockUse] = Field(
        default_factory=list, max_length=MAX_LOCKS,
        description="Named locks/semaphores held while the task runs (all or none).")
    rate_limit: RateLimitUse | None = Field(
        None, description="A token of a global rate limit taken before the task runs.")
    continue_on: ContinueOn | None = Field(
        None, description="Outcomes that let the run go on past this task (failed: true).")

    @property
    def continues_on_failure(self) -> bool:
        """True when ``continueOn.failed`` is set: a failure of this task lets the run go on."""
        return self.continue_on is not None and self.continue_on.failed

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parsed = parse_duration(value, "timeout")
        if parsed <= timedelta(0):
            raise ValueError(f"timeout: {value!r} must be greater than zero")
        if parsed > MAX_WAIT:
            raise ValueError(f"timeout: {value!r} is longer than the limit of 7 days")
        return value


#: Most runs one concurrency group may admit at once (``spec.concurrency.limit``).
MAX_CONCURRENCY_LIMIT = 10_000


class ConcurrencySpec(_Model):
    """``spec.concurrency``: how many runs of this workflow may be open at once, per key.

    ``key`` (optional) is a bare CEL expression over ``inputs`` only (for example
    ``inputs.customer``), evaluated at submission: runs with equal keys form one group;
    absent, every run of the workflow is in one group. ``limit`` (1 to 10,000) runs of a
    group are admitted at a time; ``policy`` says what a run beyond it does: ``Queue``
    waits (first come, first served per group), ``Forbid`` fails at once
    (``ConcurrencyForbidden``), ``Replace`` cancels the oldest open runs of the group to
    make room (Kubernetes CronJob's ``concurrencyPolicy`` words; Hatchet's
    ``GROUP_ROUND_ROBIN`` / ``CANCEL_NEWEST`` / ``CANCEL_IN_PROGRESS``). See
    :mod:`conveyor_engine.concurrency` and ``docs/concurrency.md``.
    """

    limit: int = Field(1, ge=1, le=MAX_CONCURRENCY_LIMIT,
                       description="Runs of one group admitted at a time.")
    key: str | None = Field(None, min_length=1, max_length=1024,
                            description="CEL over inputs naming the group (absent: one).")
    policy: Literal["Queue", "Forbid", "Replace"] = Field(
        "Queue", description="What a run beyond the limit does.")


#: Longest ``activeDeadlineSeconds`` accepted: a year, as a ``wait`` may last (seconds).
MAX_DEADLINE_SECONDS = 366 * 24 * 3600
#: Most handler tasks (``onFailure`` plus ``finally``) one workflow may have.
MAX_HANDLER_TASKS = 50


#: Most outputs one workflow may declare.
MAX_OUTPUTS = 64


class OutputSpec(_Model):
    """A workflow output (``outputs: [{name, value}]``): ``value`` is a value whose strings
    may hold ``${{ }}`` templates over ``inputs``, ``execution`` and any task's ``outputs``
    and ``phase`` (every task is final by then), evaluated once the run Succeeded. They
    are the run's result: a parent's ``workflow`` task gets them as its outputs."""

    name: str = Field(pattern=INPUT_NAME_PATTERN)
    value: Any = None
    description: str | None = None


class WorkflowSpec(_Model):
    """A workflow definition: named inputs, a DAG of tasks, its declared outputs
    (:class:`OutputSpec`), and optionally a concurrency rule for its runs
    (:class:`ConcurrencySpec`).

    ``on_failure`` and ``finally_`` (``onFailure``, ``finally`` on the wire) are handler
    task lists run once the main DAG (``tasks``) has ended: ``onFailure`` only when it
    failed (a task failed, or the deadline passed), ``finally`` always (success, failure,
    deadline; not on cancellation). ``active_deadline_seconds`` (1 s to a year) is the
    default deadline of a run's main DAG, counted from its admission (see
    :mod:`conveyor_engine.handlers` and ``docs/workflows.md``).
    """

    inputs: list[InputSpec] = Field(default_factory=list)
    tasks: list[TaskSpec] = Field(min_length=1, max_length=MAX_TASKS)
    pool: str = Field("default", pattern=NAME_PATTERN, description="Worker pool to run on.")
    rate_limits: list[RateLimitSpec] = Field(
        default_factory=list, max_length=64,
        description="Global rate limits this workflow declares (shared by every workflow).")
    concurrency: ConcurrencySpec | None = None
    on_failure: list[TaskSpec] = Field(
        default_factory=list, max_length=MAX_HANDLER_TASKS,
        description="Tasks run after the main tasks ended when the run failed.")
    finally_: list[TaskSpec] = Field(
        default_factory=list, max_length=MAX_HANDLER_TASKS, alias="finally",
        description="Tasks run after the main tasks ended, whatever the outcome.")
    active_deadline_seconds: int | None = Field(
        None, ge=1, le=MAX_DEADLINE_SECONDS,
        description="Seconds a run's main tasks may take from admission (default of runs).")
    outputs: list[OutputSpec] = Field(default_factory=list, max_length=MAX_OUTPUTS)


def is_valid_name(name: str) -> bool:
    """True when ``name`` matches :data:`NAME_PATTERN`."""
    return bool(_NAME_RE.match(name))
