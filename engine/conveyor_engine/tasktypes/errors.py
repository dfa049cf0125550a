"""Typed errors a task function raises, and the one pure mapping onto :class:`~.base.Failed`.

* :class:`RetryableError` ``(message, retry_after=None)``: retried under the task's
  ``retry`` policy; ``retry_after`` (seconds >= 0, or a :class:`~datetime.timedelta`) is the
  least wait before the next attempt, capped at the policy's ``maxBackoff`` (the same rule as
  an HTTP ``Retry-After``, :func:`conveyor_engine.retries.retry_delay`).
* :class:`NonRetryableError` ``(message)``: the task fails at once, retries left or not.
* Any other exception: a retryable failure (as Temporal and Celery's ``autoretry_for`` both
  default to), recorded as ``"<ClassName>: <message>"``.

A failure's ``kind`` (what ``retryOn`` matches) is the raised class's name, so
``retryOn: [PaymentGatewayDown]`` names a team's own ``class PaymentGatewayDown(
RetryableError)``; the names of its base classes up to the SDK's are matched too
(:attr:`~.base.Failed.kinds`), so ``retryOn: [PaymentError]`` covers every subclass.
"""

from __future__ import annotations

import math
from datetime import timedelta

from .base import Failed

#: Longest message kept from an exception; the record is cut further when stored.
MAX_MESSAGE_CHARS = 4000


class TaskError(Exception):
    """Base of the SDK's errors: a failure the task function reports on purpose.

    ``retryable`` says whether the retry policy may run the task again; ``retry_after``
    the least wait in seconds before it does (None: the policy's backoff alone).
    """

    retryable: bool = True

    def __init__(self, message: str, *, retry_after: float | timedelta | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = _seconds(retry_after)


class RetryableError(TaskError):
    """A failure worth retrying (a dependency was down, a quota ran out), optionally after
    ``retry_after`` (seconds >= 0 or a ``timedelta``; ``ValueError`` otherwise)."""

    retryable = True


class NonRetryableError(TaskError):
    """A failure that would repeat (bad input, a refused payment): the task fails at once."""

    retryable = False

    def __init__(self, message: str) -> None:
        super().__init__(message)


class TaskCancelled(Exception):
    """Raised by ``ctx.raise_if_cancelled()`` in a plain function whose attempt was cancelled
    (its execution cancelled or deleted, its timeout reached, its heartbeat timeout passed).
    The worker has recorded the attempt already; the function should just stop."""


def failure_of(exc: BaseException) -> Failed:
    """The :class:`Failed` outcome of an exception a task function raised.

    :class:`TaskError`: its ``retryable`` and ``retry_after``, message as given. Any other
    exception: retryable, message ``"<ClassName>: <message>"``. ``kind`` is the class name;
    ``kinds`` adds the names of its base classes below :class:`TaskError` (or
    :class:`Exception`), nearest first: ``("RetryableError",)`` for a direct subclass.
    """
    name = type(exc).__name__
    if isinstance(exc, TaskError):
        return Failed(exc.message[:MAX_MESSAGE_CHARS], retryable=exc.retryable, kind=name,
                      kinds=_bases(type(exc)), retry_after=exc.retry_after)
    text = str(exc)
    message = f"{name}: {text}" if text else name
    return Failed(message[:MAX_MESSAGE_CHARS], retryable=True, kind=name,
                  kinds=_bases(type(exc)))


#: Classes whose names are never part of a failure's kinds: the roots (``RetryableError``
#: and ``NonRetryableError`` are kept: ``retryOn: [RetryableError]`` is meaningful).
_ROOTS = frozenset({TaskError, Exception, BaseException, object})


def _bases(cls: type) -> tuple[str, ...]:
    return tuple(base.__name__ for base in cls.__mro__[1:] if base not in _ROOTS)


def _seconds(value: float | timedelta | None) -> float | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) \
            or not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"retry_after: expected seconds >= 0 or a timedelta, got {value!r}")
    return float(seconds)
