"""The one interface every task type implements, and the outcomes it may return.

A task type is a class with a ``name`` (the ``type:`` users write), a pydantic ``Params``
model (validated after templates are rendered) and an async ``run``. Outcomes are plain
values; the worker turns them into committed state, so a task type never touches Redis,
PostgreSQL or Kubernetes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

if TYPE_CHECKING:  # only an annotation: the outcomes here stay importable by pure modules
    import httpx


@dataclass(frozen=True)
class Resources:
    """Long-lived objects shared by all tasks of one worker process."""

    http: httpx.AsyncClient
    #: Upper bound, in bytes, for one task's outputs as JSON and for a response body kept
    #: as output (``CONVEYOR_MAX_OUTPUT_BYTES``).
    max_output_bytes: int = 1024 * 1024


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
    the exception's class). ``retry_after`` is the wait in seconds (>= 0) a server asked
    for with ``Retry-After`` (RFC 9110 §10.2.3), counted from the response; ``None`` when
    it asked for none.
    """

    error: str
    retryable: bool = True
    kind: str | None = None
    status_code: int | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Suspended:
    """Release the worker slot and run this attempt again at ``until`` (a durable timer).

    The timer is recorded in PostgreSQL with the outcome, so it survives any restart; the
    task's ``run`` is called again with ``ctx.resumed_from`` set.
    """

    until: datetime


Outcome = Succeeded | Failed | Suspended


class TaskType(ABC):
    """Base class of task types. Subclasses set ``name`` and ``Params`` and define ``run``."""

    name: ClassVar[str]
    Params: ClassVar[type[BaseModel]]
    #: Whether ``timeout`` applies (False for types that only set timers, like ``wait``).
    honours_timeout: ClassVar[bool] = True

    @abstractmethod
    async def run(self, params: BaseModel, ctx: TaskContext) -> Outcome:
        """Run one attempt with rendered, validated ``params``.

        Must not raise for expected failures (return :class:`Failed`); an unexpected
        exception is recorded as a retryable failure by the worker.
        """
