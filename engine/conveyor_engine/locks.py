"""Named locks and semaphores that tasks declare: the pure decisions. No I/O; tested as tables.

A task declares ``locks: [{name, limit}]``; it runs only while it holds every one of them
(taken together, all or none, so two tasks never wait on each other while each holds half:
no hold-and-wait, hence no deadlock among locks). A lock admits ``limit`` holders at once
(1: a mutex). Holders live in PostgreSQL (``lock_holders``, migration 0007), each with:

* a **fencing token**: the lock's next number from a per-lock sequence, so every new holder
  has a larger token than every earlier one (Martin Kleppmann, "How to do distributed
  locking", 2016: a lease alone cannot stop a paused holder from writing after it expired;
  a monotonically increasing token checked by the resource can). Conveyor checks it itself
  when the attempt's outcome is committed (a holder whose row was taken away cannot commit)
  and hands it to the task (``Conveyor-Lock-Token`` header of ``http`` tasks,
  ``task.locks`` in expressions) so the resource can refuse stale writers too;
* a **lease**, renewed with the worker's PostgreSQL lease loop; a holder whose lease ran
  out, or whose task is no longer running under the claim that took the lock (cancelled,
  finished, taken over, its execution deleted), is dead: it counts for nothing, and the next
  acquirer or the dispatcher's sweeper removes it. No holder outlives its task's claim, so
  a killed worker or a restarted operator can never leave a lock held forever (the failure
  Argo Workflows users hit when holders lived in the controller's memory, e.g.
  argoproj/argo-workflows#8684, #4703).

Who gets a lock is :func:`grant`: dead holders are evicted, and the acquirer gets it while
fewer live holders than its ``limit`` remain. A task that does not get every lock does not
keep its worker slot: it waits in ``Waiting`` (timer kind ``lock``, reason ``LockHeld``, a
message naming the holder) and is woken when a holder releases, with a re-check timer
(:data:`RECHECK_SECONDS`) as a safety net.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .model import RESOURCE_NAME_PATTERN

_NAME_RE = re.compile(RESOURCE_NAME_PATTERN)

#: The reason on a task waiting for a lock (``tasks.reason``; CamelCase as Kubernetes).
LOCK_HELD = "LockHeld"
#: The reason on an attempt whose lock was taken away before its outcome was committed.
LOCK_LOST = "LockLost"
#: The timer kind of a task waiting for a lock (``tasks.timer_kind``).
TIMER_KIND = "lock"
#: Longest a waiting task sleeps before it looks again by itself, in seconds. Releases
#: wake waiters at once; this bounds the wait if a wake-up was missed.
RECHECK_SECONDS = 5.0
#: The header an ``http`` task sends the fencing tokens of its locks in.
TOKEN_HEADER = "Conveyor-Lock-Token"


@dataclass(frozen=True, slots=True)
class Holder:
    """One holder of a lock as read from PostgreSQL.

    ``alive`` is False when its task no longer runs under the claim that took the lock
    (the task finished, was cancelled, was taken over, or its execution is gone).
    ``lease_until`` is when its lease runs out (UTC).
    """

    execution_id: str
    task: str
    token: int
    lease_until: datetime
    alive: bool = True

    def live(self, now: datetime) -> bool:
        """True while this holder counts: its task still holds the claim and its lease
        has not run out at ``now``."""
        return self.alive and self.lease_until >= now


@dataclass(frozen=True, slots=True)
class Grant:
    """What :func:`grant` decided: ``granted``; ``evict``, the dead holders to remove;
    ``blocking``, the live holders (those the acquirer waits for when not granted)."""

    granted: bool
    evict: tuple[Holder, ...]
    blocking: tuple[Holder, ...]


def grant(holders: Iterable[Holder], *, limit: int, now: datetime) -> Grant:
    """Decide whether a new holder gets a lock with ``limit`` places, given its current
    ``holders`` at ``now``.

    Dead holders (:meth:`Holder.live` false) are evicted and do not count; the lock is
    granted while fewer than ``limit`` live holders remain. The limit is the acquirer's
    own: a task declaring ``limit: 2`` gets the lock next to one holder even if that
    holder declared ``limit: 1`` (declare one limit per name; the compiler refuses two
    different literal limits for one name in a workflow). Raises ``ValueError`` for
    ``limit < 1``.
    """
    if limit < 1:
        raise ValueError(f"limit: {limit} must be at least 1")
    evict, live = [], []
    for holder in holders:
        (live if holder.live(now) else evict).append(holder)
    live.sort(key=lambda h: h.token)
    return Grant(len(live) < limit, tuple(evict), tuple(live))


def name_problem(name: object, field: str) -> str | None:
    """Why ``name`` (a rendered lock name or rate-limit key) is unusable, naming
    ``field``, or None when it is fine: a string matching
    :data:`~conveyor_engine.model.RESOURCE_NAME_PATTERN` (no spaces, commas or ``=``, at
    most 128 characters)."""
    if not isinstance(name, str):
        return f"{field}: must be a string, got {type(name).__name__} ({name!r})"[:300]
    if not _NAME_RE.match(name):
        return (f"{field}: {name[:140]!r} is not a valid name: 1-128 characters, letters, "
                f"digits and _ . : / @ -, starting with a letter or digit")
    return None


def wait_message(name: str, limit: int, blocking: Sequence[Holder]) -> str:
    """The message of a task waiting for lock ``name``: ``waiting for lock db-1 (limit 1)
    held by <execution>/<task>`` (at most three holders named, then how many more)."""
    shown = ", ".join(f"{h.execution_id}/{h.task}" for h in blocking[:3])
    more = f" and {len(blocking) - 3} more" if len(blocking) > 3 else ""
    held = f" held by {shown}{more}" if blocking else ""
    return f"waiting for lock {name} (limit {limit}){held}"


def recheck_at(now: datetime, lease_seconds: float) -> datetime:
    """When a task that did not get a lock looks again by itself: at most
    :data:`RECHECK_SECONDS` from ``now``, sooner when the lock lease is shorter (a dead
    holder's lease has run out by then)."""
    return now + timedelta(seconds=min(RECHECK_SECONDS, max(lease_seconds, 0.1)))


def header_value(tokens: Mapping[str, int]) -> str:
    """The ``Conveyor-Lock-Token`` field value: ``name=token`` per lock, sorted by name,
    joined by ``, `` (an RFC 9110 §5.6.1 list), e.g. ``api:a=3, db-1=17``."""
    return ", ".join(f"{name}={tokens[name]}" for name in sorted(tokens))


def lock_order(names: Iterable[str]) -> list[str]:
    """The order locks are taken in: sorted, duplicates dropped (every acquirer locks the
    rows in one order, so two acquirers never deadlock in PostgreSQL)."""
    return sorted(set(names))
