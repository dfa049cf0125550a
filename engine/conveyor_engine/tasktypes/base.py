"""The one interface every task type implements, and the outcomes it may return.

A task type is a class with a ``name`` (the ``type:`` users write), a pydantic ``Params``
model (validated after templates are rendered) and an async ``run``. Outcomes are plain
values; the worker turns them into committed state, so a task type never touches Redis,
PostgreSQL or Kubernetes. Most types are written with the SDK's ``@task_type`` decorator
(:mod:`conveyor_engine.sdk`), which builds such a class around a function; the built-in
``http``, ``set`` and ``wait`` subclass :class:`TaskType` directly. Both are registered and
run the same way (:mod:`.registry`, :mod:`.running`).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from pydantic import BaseModel

from .signals import Signals

if TYPE_CHECKING:  # only an annotation: the outcomes here stay importable by pure modules
    from concurrent.futures import Executor

    import httpx


@dataclass(frozen=True)
class Resources:
    """Long-lived objects shared by all tasks of one worker process."""

    http: httpx.AsyncClient
    #: Upper bound, in bytes, for one task's outputs as JSON and for a response body kept
    #: as output (``CONVEYOR_MAX_OUTPUT_BYTES``).
    max_output_bytes: int = 1024 * 1024
    #: Where plain (non-async) task functions run: the worker's thread pool, sized to its
    #: concurrency (:func:`conveyor_engine.worker.worker.task_threads`). ``None``: the
    #: event loop's default executor (the test harness).
    threads: Executor | None = None


@dataclass(frozen=True)
class TaskContext:
    """What a task type may know about the attempt it runs.

    ``resumed_from`` is the time a durable timer set by an earlier :class:`Suspended`
    outcome of this same attempt fell due; ``None`` on a first run. ``timeout`` is the
    task's own limit of one attempt (``None``: it sets none), which the worker enforces
    around ``run``; a type that waits on the network sizes its own I/O timeouts by it, so
    no shorter library default cuts the attempt short (issue 9).
    """

    execution_id: str
    task_name: str
    attempt: int
    resources: Resources
    resumed_from: datetime | None = None
    timeout: timedelta | None = None
    #: The fencing tokens of the locks this attempt holds, by lock name (empty: none);
    #: see :mod:`conveyor_engine.locks`. An ``http`` task sends them as a header.
    locks: Mapping[str, int] = field(default_factory=dict)
    #: Heartbeats and the cancellation flag, shared with the worker (thread-safe).
    signals: Signals = field(default_factory=Signals)
    #: The Secrets the task's pool mounts, by Secret name then key (issue 11 item 4; empty
    #: until then). Never logged or stored.
    secrets: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    #: Starts and reads child executions for the built-in ``workflow`` type (the worker's
    #: :class:`conveyor_engine.children.ChildRunner`; None outside a worker).
    children: ChildRuns | None = None

    @property
    def idempotency_key(self) -> str:
        """``"<execution_id>/<task_name>"``: the same for every attempt of this task in this
        execution, different for any other task or execution. Send it to services that
        deduplicate (an ``Idempotency-Key`` header, a payment's client reference)."""
        return f"{self.execution_id}/{self.task_name}"

    def heartbeat(self, details: Any = None) -> None:
        """Say the attempt is alive and how far it got (``details``: any value, kept in
        memory as the last progress). Cheap and thread-safe: call it as often as you like.
        The worker renews the claim's lease while the attempt runs; a type declared with a
        ``heartbeat_timeout`` that goes longer without a heartbeat is stopped and recorded
        as a retryable failure of kind ``HeartbeatTimeout``."""
        self.signals.heartbeat(details)

    @property
    def cancelled(self) -> threading.Event:
        """Set when the attempt must stop (execution cancelled or deleted, timeout,
        heartbeat timeout). An async function is interrupted with ``CancelledError``
        anyway; a plain function (run in a thread) polls this or waits on it."""
        return self.signals.cancelled

    def raise_if_cancelled(self) -> None:
        """Raise :class:`~conveyor_engine.tasktypes.errors.TaskCancelled` once the attempt
        is cancelled (a plain function calls it between steps)."""
        if self.signals.cancelled.is_set():
            from .errors import TaskCancelled

            raise TaskCancelled(self.signals.reason or "cancelled")


@dataclass(frozen=True, slots=True)
class ChildRun:
    """A child execution of a ``workflow`` task's attempt, as recorded: its id, engine
    workflow name, phase, message, declared outputs (once it Succeeded), and ``cause``:
    ``"<task>: <error>"`` of its first failed task (None when none failed)."""

    execution_id: str
    workflow: str
    phase: str
    message: str | None = None
    outputs: dict[str, Any] | None = None
    cause: str | None = None


class ChildRefused(Exception):
    """A child execution could not be started; ``str()`` says why, naming the field.
    ``retryable``: whether a later attempt may succeed (a workflow not registered yet)."""

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


class ChildRuns(Protocol):
    """What the ``workflow`` type may ask of the engine (implemented by the worker)."""

    #: Seconds between the parent task's re-checks of its child while it waits (the
    #: safety net; the child's finish wakes it at once).
    recheck_seconds: float

    async def find(self, execution_id: str, task: str, attempt: int) -> ChildRun | None:
        """The child started for this attempt, if any."""

    async def start(self, execution_id: str, task: str, attempt: int, *, workflow: str,
                    namespace: str | None, inputs: dict[str, Any]) -> ChildRun:
        """Start the child of this attempt (idempotent); raises :class:`ChildRefused`."""

    async def cancel(self, execution_id: str, reason: str) -> None:
        """Cancel a child execution (and its own children)."""


@dataclass(frozen=True)
class Succeeded:
    """The attempt finished; ``outputs`` become ``tasks.<name>.outputs`` downstream."""

    outputs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Failed:
    """The attempt failed. ``retryable`` False skips the remaining retries (bad input).

    What the task's ``retry.retryOn`` matches (see :mod:`conveyor_engine.retries`):
    ``status_code``, the HTTP status of a response that was not expected (``None``
    otherwise); ``kind``, a CamelCase name of the failure when it has one: ``"Timeout"``
    (the attempt or an HTTP client timed out) or an error type name (``"ConnectError"``,
    the exception's class); ``kinds``, further names it answers to (the raised class's
    base classes, for SDK errors: see :func:`~.errors.failure_of`). ``retry_after`` is the
    least wait in seconds (>= 0) before the next attempt: what a server asked for with
    ``Retry-After`` (RFC 9110 §10.2.3), counted from the response, or what a task function
    asked for with ``RetryableError(retry_after=...)``; ``None`` when none was asked.
    """

    error: str
    retryable: bool = True
    kind: str | None = None
    status_code: int | None = None
    retry_after: float | None = None
    kinds: tuple[str, ...] = ()


@dataclass(frozen=True)
class Suspended:
    """Release the worker slot and run this attempt again at ``until`` (a durable timer).

    The timer is recorded in PostgreSQL with the outcome, so it survives any restart; the
    task's ``run`` is called again with ``ctx.resumed_from`` set.
    """

    until: datetime
    #: What the task waits for, shown as its message while it waits (None: the default).
    message: str | None = None


Outcome = Succeeded | Failed | Suspended


class TaskType(ABC):
    """Base class of task types. Subclasses set ``name`` and ``Params`` and define ``run``.

    ``name``: what ``type:`` says in a workflow (lower-case letters, digits, ``-``, ``_``
    and ``.``, checked when registered). ``Params``: the pydantic model rendered params are
    validated against (literal params also at compile time). ``Outputs``: an optional model
    of the outputs, published with the params' JSON Schema. ``heartbeat_timeout``: seconds
    an attempt may go without ``ctx.heartbeat()`` before it is stopped (None: no limit).
    """

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    Outputs: ClassVar[type[BaseModel] | None] = None
    #: Whether ``timeout`` applies (False for types that only set timers, like ``wait``).
    honours_timeout: ClassVar[bool] = True
    heartbeat_timeout: ClassVar[float | None] = None

    @abstractmethod
    async def run(self, params: BaseModel, ctx: TaskContext) -> Outcome:
        """Run one attempt with rendered, validated ``params``.

        Must not raise for expected failures (return :class:`Failed`); an unexpected
        exception is recorded as a retryable failure by the worker.
        """
