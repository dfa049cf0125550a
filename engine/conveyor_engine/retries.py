"""Pure decisions of the retry policy: how long to wait, and which failures to retry.

No I/O; tested as tables (``tests/unit/test_retries.py``). The policy's fields are
:class:`conveyor_engine.model.RetryPolicy`'s; :func:`~conveyor_engine.progress.transition_for`
and the worker's outcome records (``worker/outcome.py``) apply these decisions.

Backoff (issue 9). The *ceiling* before retry ``n`` (1-based) is Argo Workflows'
exponential backoff, ``min(maxBackoff, backoff * factor**(n-1))`` (:func:`backoff_ceiling`).
With ``jitter: Full`` (the default) the wait is a uniform random point of ``[0, ceiling)``,
"full jitter" from the AWS Architecture Blog's *Exponential Backoff And Jitter* (Marc
Brooker, 2015): ``sleep = random_between(0, min(cap, base * 2**attempt))``. It spreads the
retries of many tasks that failed together (one outage) instead of sending them back in
waves. ``jitter: None`` waits exactly the ceiling (deterministic; for tests and for callers
that want a fixed schedule). Decorrelated jitter is not offered: it needs the previous wait,
which is not stored.

``Retry-After`` (RFC 9110 §10.2.3) from an http task's 429 or 503 sets a floor under the
wait: the next attempt starts no earlier than the server asked, capped at ``maxBackoff`` so
a server cannot park a task for longer than its policy allows (:func:`retry_delay`).

``retryOn`` (:func:`retry_on_matches`) narrows which retryable failures are retried; see
:data:`RETRY_ON_KINDS` and :func:`retry_on_problem` for the entries it accepts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

#: ``jitter`` values. ``Full``: uniform in ``[0, ceiling)``; ``None``: exactly the ceiling.
JITTER_FULL = "Full"
JITTER_NONE = "None"
JITTERS = (JITTER_FULL, JITTER_NONE)

#: Failure kinds ``retryOn`` names without a status code: an attempt that ran out of time
#: (the task's ``timeout``, or an HTTP client timeout), and an attempt lost with its worker
#: (:class:`conveyor_engine.progress.LostAttempt`, reason ``WorkerLost``).
TIMEOUT = "Timeout"
WORKER_LOST = "WorkerLost"
#: An SDK task declared with a ``heartbeat_timeout`` that went longer without a heartbeat.
HEARTBEAT_TIMEOUT = "HeartbeatTimeout"
RETRY_ON_KINDS = frozenset({TIMEOUT, WORKER_LOST, HEARTBEAT_TIMEOUT})

#: A status class (``"5xx"``) or a status code (``"429"``), RFC 9110 §15.
_STATUS_CLASS_RE = re.compile(r"^[1-5]xx$")
_STATUS_CODE_RE = re.compile(r"^[1-5][0-9]{2}$")
#: An error type name (``ConnectError``, ``requests.ConnectionError``): what a task type
#: reports as a failure's ``kind`` (the exception's class name for transport errors).
_ERROR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_ERROR_NAME = 128

#: Statuses whose ``Retry-After`` is honoured: 429 (RFC 6585 §4) and 503 (RFC 9110 §15.6.4).
RETRY_AFTER_STATUSES = frozenset({429, 503})


def backoff_ceiling(base: timedelta, factor: float, cap: timedelta,
                    retry_number: int) -> timedelta:
    """``min(cap, base * factor**(retry_number - 1))``: Argo's exponential backoff.

    ``retry_number`` is 1-based (1 = the first retry); raises ``ValueError`` below 1. The
    comparison is made in log space, since ``factor ** n`` overflows a float long before a
    retry limit could matter.
    """
    if retry_number < 1:
        raise ValueError(f"retry_number is 1-based, got {retry_number}")
    if base >= cap:
        return cap
    if not base:
        return base
    exponent = retry_number - 1
    if exponent * math.log(factor) >= math.log(cap / base):
        return cap
    return min(base * factor**exponent, cap)


def jittered(ceiling: timedelta, jitter: str, rand: Callable[[], float]) -> timedelta:
    """The wait for ``ceiling`` under ``jitter``.

    ``Full``: ``ceiling * rand()``, where ``rand`` returns a float in ``[0, 1)`` (as
    :func:`random.random` does); ``None``: ``ceiling``. Raises ``ValueError`` for another
    ``jitter`` or a ``rand()`` outside ``[0, 1)``.
    """
    if jitter == JITTER_NONE:
        return ceiling
    if jitter != JITTER_FULL:
        raise ValueError(f"jitter: {jitter!r} is not one of {', '.join(JITTERS)}")
    point = rand()
    if not 0.0 <= point < 1.0:
        raise ValueError(f"rand() returned {point!r}; expected a float in [0, 1)")
    return ceiling * point


def retry_delay(wait: timedelta, retry_after: float | None, cap: timedelta) -> timedelta:
    """The wait before the next attempt: ``wait`` (the jittered backoff), raised to the
    server's ``Retry-After`` (seconds, >= 0) when one was given, which is itself capped at
    ``cap`` (the policy's ``maxBackoff``)."""
    if retry_after is None:
        return wait
    return max(wait, min(timedelta(seconds=max(retry_after, 0.0)), cap))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` field value received at ``now`` (aware).

    RFC 9110 §10.2.3: either ``delay-seconds`` (``1*DIGIT``) or an ``HTTP-date``
    (§5.6.7: IMF-fixdate, or the obsolete RFC 850 and asctime forms, which
    :func:`email.utils.parsedate_to_datetime` also reads). A date in the past gives 0.
    Anything else (empty, negative, a fraction, an unreadable date) gives ``None``: an
    invalid field is ignored, as a recipient may do with an invalid field value.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isascii() and text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # an HTTP-date is always GMT (§5.6.7)
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)


def retry_on_problem(entry: object) -> str | None:
    """Why ``entry`` is not a valid ``retryOn`` entry, or ``None`` when it is.

    Valid: a status class ``"1xx"``..``"5xx"``; a status code ``"100"``..``"599"``;
    ``"Timeout"``; ``"WorkerLost"``; ``"HeartbeatTimeout"``; an error type name
    (``ConnectError``, an SDK task's ``PaymentGatewayDown``; dotted names allowed, at most
    128 characters) matched against a failure's ``kind`` and ``kinds``.
    """
    if not isinstance(entry, str):
        return f"{entry!r} is not a string; write status codes quoted, e.g. \"429\""
    if (_STATUS_CLASS_RE.match(entry) or _STATUS_CODE_RE.match(entry)
            or entry in RETRY_ON_KINDS):
        return None
    if entry[:1].isdigit():
        return (f"{entry!r} is not an HTTP status; expected a class such as \"5xx\" or a "
                f"code from 100 to 599 such as \"429\"")
    if len(entry) <= MAX_ERROR_NAME and _ERROR_NAME_RE.match(entry):
        return None
    return (f"{entry!r} is not a status class (\"5xx\"), a status code (\"429\"), "
            f"\"Timeout\", \"WorkerLost\" or an error type name such as \"ConnectError\"")


def retry_on_matches(retry_on: Sequence[str] | None, *, kind: str | None,
                     status_code: int | None, kinds: Sequence[str] = ()) -> bool:
    """Whether ``retryOn`` lets a failure with this ``kind`` and ``status_code`` be retried.

    ``retry_on`` None (the field absent) matches every failure: today's behaviour, where the
    failure's own ``retryable`` flag alone decides. Otherwise a failure matches when its
    status code or status class (``503`` -> ``"503"``, ``"5xx"``) or its ``kind``
    (``"Timeout"``, ``"WorkerLost"``, an error type name) or one of its further ``kinds``
    (the base classes of an SDK task's error: ``PaymentError`` for a ``CardDeclined``
    subclass) is listed; a failure with none of these matches nothing. This only narrows:
    a failure its task type marks not retryable is never retried.
    """
    if retry_on is None:
        return True
    listed = set(retry_on)
    if status_code is not None and (
            str(status_code) in listed or f"{status_code // 100}xx" in listed):
        return True
    return (kind is not None and kind in listed) or any(k in listed for k in kinds)
