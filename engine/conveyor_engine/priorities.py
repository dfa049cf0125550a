"""Priorities: which band a task's work is dispatched on, and which band a worker reads first.

Pure decisions (no I/O), tested as tables (``tests/unit/test_priorities.py``); the Redis side
is in :mod:`conveyor_engine.queue`.

An execution carries a ``priority`` (an integer from :data:`MIN_PRIORITY` to
:data:`MAX_PRIORITY`, default 0: an Execution's ``spec.priority``, ``Engine.submit(...,
priority=...)``). Its tasks are dispatched on one of three streams (bands) of their pool
(:func:`band_of`): ``high`` (priority above 0), ``normal`` (0, the stream every pool always
had) and ``low`` (below 0). Within a band work is first in, first out; a finer order inside a
band is not given (as Celery on Redis folds its ten priorities into a few queues).

**The rule.** A worker fills its free slots band by band in the order :func:`read_order`
gives for its n-th read: ``high, normal, low`` on six reads out of every eight, ``normal``
first on one (n % 8 == 3) and ``low`` first on one (n % 8 == 7); each read takes from the
first band as much as it has (up to the free slots), then tops up from the next bands in
priority order. So higher-priority work is claimed first, and a non-empty lower band is
never starved: however much high-priority work keeps arriving, ``normal`` gets the first
pick at least once in every eight reads and ``low`` at least once in every eight (a strict
priority queue such as RabbitMQ's starves low priorities under sustained load; this one does
not). When every band is empty the worker blocks on all of them at once
(:func:`blocking_plan`), so an idle worker wakes for work of any band.
"""

from __future__ import annotations

from enum import StrEnum

#: Lowest and highest priority accepted (``spec.priority``).
MIN_PRIORITY = -1000
MAX_PRIORITY = 1000
#: Reads per cycle of the weighted schedule, and the reads in each cycle that start with a
#: lower band (see :func:`read_order`).
CYCLE = 8
NORMAL_FIRST_AT = 3
LOW_FIRST_AT = 7


class Band(StrEnum):
    """A priority band: one dispatch stream per pool and band."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


#: Every band, highest first.
BANDS: tuple[Band, ...] = (Band.HIGH, Band.NORMAL, Band.LOW)


def check_priority(priority: object) -> int:
    """``priority`` when it is an integer in range; else ``ValueError`` naming the field."""
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise ValueError(f"priority: must be an integer, not {priority!r}")
    if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
        raise ValueError(f"priority: {priority} is outside {MIN_PRIORITY}..{MAX_PRIORITY}")
    return priority


def band_of(priority: int) -> Band:
    """The band a task of priority ``priority`` is dispatched on: ``high`` above 0,
    ``normal`` at 0, ``low`` below 0."""
    if priority > 0:
        return Band.HIGH
    if priority < 0:
        return Band.LOW
    return Band.NORMAL


def read_order(tick: int) -> tuple[Band, ...]:
    """The order in which a worker's ``tick``-th read (0-based) takes from the bands.

    Every :data:`CYCLE` reads: ``low`` first at :data:`LOW_FIRST_AT`, ``normal`` first at
    :data:`NORMAL_FIRST_AT`, ``high`` first otherwise; the other bands follow in priority
    order.
    """
    position = tick % CYCLE
    if position == LOW_FIRST_AT:
        return (Band.LOW, Band.HIGH, Band.NORMAL)
    if position == NORMAL_FIRST_AT:
        return (Band.NORMAL, Band.HIGH, Band.LOW)
    return BANDS


def blocking_plan(order: tuple[Band, ...], free: int) -> tuple[tuple[Band, ...], int]:
    """``(bands, count)`` of the one blocking read a worker makes when every band was empty.

    ``XREADGROUP``'s ``COUNT`` applies to each stream it reads, so ``count`` is split
    evenly and never lets the read return more than ``free`` entries in all: with fewer free
    slots than bands, only the first ``free`` bands of ``order`` are watched (the others
    are read on the next pass, at most one blocking read later).
    """
    if free <= 0:
        return (), 0
    bands = order[: min(free, len(order))]
    return bands, free // len(bands)
