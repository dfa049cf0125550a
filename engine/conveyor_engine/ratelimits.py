"""Global rate limits: the pure decisions. No I/O; tested as tables.

A workflow declares ``rateLimits: [{key, perSecond | perMinute, burst}]``; a task takes
``rateLimit: {key, units}`` tokens before it runs. The limit holds across every worker, pool
and workflow: the state is one Redis key per limit key, changed by a Lua script
(:mod:`conveyor_engine.tokenbucket`) that reads the time with Redis ``TIME``, so workers
need no clock agreement (Redis runs a script atomically, and ``TIME`` inside a script is
allowed since Redis 5's effects replication, the default from Redis 7).

The algorithm is GCRA, the generic cell rate algorithm (ITU-T I.371; the form of
``redis-cell`` and brandur.org's "Rate Limiting, Cells, and GCRA"): one number per key, the
theoretical arrival time ``tat``. Tokens arrive every ``interval = 1 / rate``; ``burst``
tokens may be taken at once. It is a token bucket of capacity ``burst`` refilled at
``rate``: over any window of ``w`` seconds at most ``burst + rate * w`` tokens are granted
(:func:`window_allowance`). :func:`gcra` is the arithmetic, mirrored line for line by the
Lua script, and the one place it is tested.

A task without its token does not keep its worker slot: it waits in ``Waiting`` (timer kind
``rate``, reason ``RateLimited``) until the token is due.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .model import RateLimitSpec

#: The reason on a task waiting for a rate-limit token.
RATE_LIMITED = "RateLimited"
#: The timer kind of a task waiting for a rate-limit token.
TIMER_KIND = "rate"
#: Microseconds per second: the script and :func:`gcra` count in whole microseconds.
MICROS = 1_000_000


@dataclass(frozen=True, slots=True)
class Rate:
    """A limit in the script's units: ``interval_us`` microseconds per token, ``burst``
    tokens at once."""

    interval_us: int
    burst: int

    @property
    def per_second(self) -> float:
        """Tokens per second."""
        return MICROS / self.interval_us


def rate_of(spec: RateLimitSpec) -> Rate:
    """The :class:`Rate` of a declaration: ``perSecond`` or ``perMinute / 60`` tokens per
    second; ``burst`` as declared, else one second's worth (at least 1)."""
    per_second = spec.per_second if spec.per_second is not None else (spec.per_minute or 0) / 60
    burst = spec.burst if spec.burst is not None else max(1, math.floor(per_second))
    return Rate(max(1, round(MICROS / per_second)), burst)


@dataclass(frozen=True, slots=True)
class Decision:
    """What :func:`gcra` decided: ``allowed``; ``tat`` to store (unchanged when refused);
    ``wait_us``, how long until the tokens can be taken (0 when allowed)."""

    allowed: bool
    tat: int
    wait_us: int


def gcra(*, tat: int | None, now: int, rate: Rate, units: int) -> Decision:
    """Take ``units`` tokens at ``now`` (microseconds, Redis ``TIME``) from a limit whose
    stored theoretical arrival time is ``tat`` (None: never used).

    ``new = max(tat, now) + units * interval``; allowed when ``new - burst * interval <=
    now``, which then stores ``new``; refused otherwise, with the wait
    ``new - burst * interval - now``. Raises ``ValueError`` when ``units`` exceeds
    ``burst`` (such a request could never be granted) or is below 1.
    """
    if units < 1 or units > rate.burst:
        raise ValueError(f"units: {units} must be between 1 and the burst {rate.burst}")
    start = now if tat is None else max(tat, now)
    new = start + units * rate.interval_us
    allow_at = new - rate.burst * rate.interval_us
    if allow_at <= now:
        return Decision(True, new, 0)
    return Decision(False, start if tat is not None else now, allow_at - now)


def window_allowance(rate: Rate, seconds: float) -> int:
    """Most tokens granted within any window of ``seconds``: ``burst + rate * seconds``
    (rounded down), the token bucket's bound."""
    return rate.burst + math.floor(seconds * MICROS / rate.interval_us)


def same_limit(a: RateLimitSpec, b: RateLimitSpec) -> bool:
    """True when two declarations of one key mean the same limit (same rate and burst,
    however written: ``perSecond: 1`` is ``perMinute: 60``)."""
    return rate_of(a) == rate_of(b)


def describe(spec: RateLimitSpec) -> str:
    """A declaration as text: ``5/s, burst 5``."""
    rate = rate_of(spec)
    return f"{rate.per_second:g}/s, burst {rate.burst}"


def declaration_problems(specs: Sequence[RateLimitSpec]) -> list[tuple[int, str]]:
    """``(index, message)`` for each declaration of a key that contradicts an earlier one
    in the same list (a repeated identical declaration is harmless)."""
    first: dict[str, int] = {}
    problems = []
    for i, spec in enumerate(specs):
        if spec.key not in first:
            first[spec.key] = i
            continue
        j = first[spec.key]
        if not same_limit(specs[j], spec):
            problems.append((i, f'key "{spec.key}" is declared twice with different limits: '
                                f"rateLimits[{j}] ({describe(specs[j])}) and rateLimits[{i}] "
                                f"({describe(spec)})"))
    return problems


def conflict_message(spec: RateLimitSpec, workflow: str, other: RateLimitSpec,
                     other_workflow: str) -> str:
    """The problem of a declaration that contradicts another workflow's, naming both."""
    return (f'key "{spec.key}" is declared as {describe(spec)} here but as {describe(other)} '
            f'by workflow "{other_workflow}"; a rate limit is global: declare one limit per '
            f"key (or use another key)")


def wait_message(key: str, wait_us: int) -> str:
    """The message of a task waiting for a token: ``rate limit api: next token in 0.2s``."""
    return f"rate limit {key}: next token in {wait_us / MICROS:.3g}s"
