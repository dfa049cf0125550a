"""Whether the worker's dependencies (Redis, PostgreSQL) answer: one state per dependency.

An outage must show as one log line when a dependency goes down, one when it comes back,
readiness false in between (``/readyz``) and the gauge ``conveyor_dependency_up`` - never
as a traceback per retry of every loop. Two pieces:

* :func:`dependency_of` tells which dependency an exception is an outage of (``"redis"``,
  ``"postgres"``) or ``None`` for anything else (a bug keeps its traceback). It looks only at
  class names, modules and the traceback's modules, so it imports no client library.
* :func:`observe` is the state machine, a pure function over the previous state, one
  observation and the time; :class:`DependencyTracker` applies it and does the I/O edges
  (the log line and the gauge).

Rule of recovery: any failed call marks the dependency down at once; a successful probe
marks it up only when no call has failed for at least ``quiet`` seconds, so a server that
answers PING but refuses writes (a demoted Redis master: ``READONLY``) does not flap.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, replace
from types import TracebackType

log = logging.getLogger("conveyor_engine.dependencies")

REDIS = "redis"
POSTGRES = "postgres"
#: The dependencies a worker tracks, in the order they are reported.
DEPENDENCIES = (REDIS, POSTGRES)

# Exception classes (by name, anywhere in the class's MRO) that mean "the server cannot be
# used now", per client library. redis-py: connection and timeout errors, a replica or
# demoted master refusing writes (READONLY), a server loading its data set (LOADING), a
# master without its replicas (MASTERDOWN), a cluster without a slot's owner (CLUSTERDOWN,
# TRYAGAIN), Sentinel not knowing the master. asyncpg: SQLSTATE classes 08 (connection
# exception) and 57 (operator intervention: admin shutdown, crash shutdown, cannot connect
# now), a dropped connection, 25006 (a read-only standby after a failover), and the
# client's InternalClientError, which asyncpg raises when the server closes a connection in
# the middle of an operation (seen during a fast shutdown: "cannot switch to state 12;
# another operation (2) is in progress").
_OUTAGE_CLASSES = {
    "redis": {
        "ConnectionError", "TimeoutError", "ReadOnlyError", "BusyLoadingError",
        "MasterDownError", "ClusterDownError", "TryAgainError", "MasterNotFoundError",
        "SlaveNotFoundError", "MaxConnectionsError",
    },
    "asyncpg": {
        "PostgresConnectionError", "OperatorInterventionError", "ConnectionDoesNotExistError",
        "ReadOnlySQLTransactionError", "TooManyConnectionsError", "InternalClientError",
    },
}
_NAMES = {"redis": REDIS, "asyncpg": POSTGRES}
# Raised by the standard library on behalf of a client (refused connection, asyncpg's
# command_timeout): the client is found in the traceback.
_BUILTIN_OUTAGES = (OSError, TimeoutError, EOFError)


def _library(module: str) -> str | None:
    top = module.split(".", 1)[0]
    return top if top in _NAMES else None


def _traceback_library(tb: TracebackType | None) -> str | None:
    """The innermost client library (``redis``/``asyncpg``) seen in a traceback."""
    found = None
    while tb is not None:
        found = _library(tb.tb_frame.f_globals.get("__name__", "")) or found
        tb = tb.tb_next
    return found


def _one(exc: BaseException) -> str | None:
    for cls in type(exc).__mro__:
        library = _library(cls.__module__)
        if library is None:
            continue
        if cls.__name__ in _OUTAGE_CLASSES[library]:
            return _NAMES[library]
        if library == "asyncpg" and cls.__name__ == "InterfaceError" and "closed" in str(exc):
            return POSTGRES  # "connection is closed" / "pool is closing"
    if isinstance(exc, _BUILTIN_OUTAGES):
        library = _traceback_library(exc.__traceback__)
        cause = exc.__cause__ or exc.__context__
        if library is None and cause is not None:
            # asyncio.wait_for's TimeoutError carries only asyncio's frames; the call it
            # cut short (a CancelledError inside the client library) is its cause.
            library = _traceback_library(cause.__traceback__)
        return _NAMES[library] if library else None
    return None


def dependency_of(exc: BaseException) -> str | None:
    """``"redis"`` or ``"postgres"`` when ``exc`` means that server cannot be used now,
    else ``None``.

    Follows the ``__cause__`` / ``__context__`` chain (at most 8 links), so an error raised
    while handling an outage still counts as that outage.
    """
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return None
        found = _one(seen)
        if found is not None:
            return found
        seen = seen.__cause__ or seen.__context__
    return None


@dataclass(frozen=True, slots=True)
class DependencyState:
    """One dependency's state: ``up``; ``since`` when that state began; ``last_failure``
    when a call last failed; ``reason`` of the outage (``"TimeoutError: ..."``). Times are
    monotonic seconds."""

    up: bool = True
    since: float = 0.0
    last_failure: float | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """A transition to report: ``up`` is the new state, ``after`` the seconds spent in the
    old one, ``reason`` why it went down (empty when it came back)."""

    dependency: str
    up: bool
    after: float
    reason: str


def observe(state: DependencyState, *, dependency: str, ok: bool, now: float,
            quiet: float, reason: str = "") -> tuple[DependencyState, Change | None]:
    """The next state of ``dependency`` after one observation, and the change to report.

    ``ok`` False (a failed call or probe) marks it down at once. ``ok`` True (a probe that
    answered) marks it up only when no call failed in the last ``quiet`` seconds.
    """
    if not ok:
        if state.up:
            new = DependencyState(False, now, now, reason)
            return new, Change(dependency, False, now - state.since, reason)
        return replace(state, last_failure=now), None
    if state.up:
        return state, None
    if state.last_failure is not None and now - state.last_failure < quiet:
        return state, None
    return DependencyState(True, now, state.last_failure), Change(dependency, True,
                                                                   now - state.since, "")


class DependencyTracker:
    """The live states of a process's dependencies; thread-safe (``/readyz`` reads it from
    the health server's thread).

    ``gauge`` is a Prometheus gauge with a ``dependency`` label (set to 1/0 on every
    change); ``clock`` returns monotonic seconds.
    """

    def __init__(self, dependencies: Iterable[str] = DEPENDENCIES, *, quiet: float,
                 clock, gauge=None) -> None:
        self._clock = clock
        self._quiet = quiet
        self._gauge = gauge
        self._lock = threading.Lock()
        now = clock()
        self._states = {name: DependencyState(True, now) for name in dependencies}
        for name in self._states:
            self._set_gauge(name, True)

    def _set_gauge(self, name: str, up: bool) -> None:
        if self._gauge is not None:
            self._gauge.labels(name).set(1 if up else 0)

    def record(self, dependency: str, *, ok: bool, reason: str = "") -> Change | None:
        """Apply one observation; log and export a change. Returns the change, if any."""
        with self._lock:
            state = self._states.get(dependency)
            if state is None:
                return None
            new, change = observe(state, dependency=dependency, ok=ok, now=self._clock(),
                                  quiet=self._quiet, reason=reason)
            self._states[dependency] = new
        if change is not None:
            self._set_gauge(dependency, change.up)
            if change.up:
                log.warning("%s is reachable again after %.1fs down", dependency, change.after)
            else:
                log.error("%s is unreachable (%s); work that needs it waits until it answers",
                          dependency, change.reason)
        return change

    def absorb(self, exc: BaseException) -> bool:
        """If ``exc`` is an outage of a tracked dependency, record it and return True (the
        caller logs nothing more); else return False (the caller logs it as a bug)."""
        dependency = dependency_of(exc)
        if dependency is None or dependency not in self._states:
            return False
        self.record(dependency, ok=False, reason=f"{type(exc).__name__}: {exc}"[:200])
        return True

    def up(self, dependency: str | None = None) -> bool:
        """Whether ``dependency`` (or every tracked dependency, when None) is up."""
        with self._lock:
            if dependency is not None:
                return self._states[dependency].up
            return all(s.up for s in self._states.values())

    def down(self) -> list[str]:
        """The dependencies that are down now, in tracking order."""
        with self._lock:
            return [name for name, s in self._states.items() if not s.up]


def log_failure(tracker: DependencyTracker | None, logger: logging.Logger, exc: BaseException,
                message: str, *args: object) -> None:
    """Log ``message`` with ``exc``'s traceback, unless ``exc`` is a dependency outage that
    ``tracker`` absorbs (then the tracker's one line per outage is all that is logged)."""
    if tracker is not None and tracker.absorb(exc):
        return
    logger.error(message, *args, exc_info=exc)


class OutageFilter(logging.Filter):
    """A logging filter for a client library's own logger (asyncpg's pool logs a traceback
    each time it fails to reconnect its minimum of connections): a record carrying a
    dependency outage goes to the tracker instead of the log."""

    def __init__(self, tracker: DependencyTracker) -> None:
        super().__init__()
        self._tracker = tracker

    def filter(self, record: logging.LogRecord) -> bool:
        """False (drop the record) when it carries an outage the tracker absorbs."""
        exc = record.exc_info[1] if record.exc_info else None
        return exc is None or not self._tracker.absorb(exc)


#: Loggers of client libraries that log outages themselves, with tracebacks.
LIBRARY_LOGGERS = ("asyncpg.pool",)


def install(tracker: DependencyTracker) -> None:
    """Make ``tracker`` this process's tracker (:data:`current`) and put an
    :class:`OutageFilter` on each of :data:`LIBRARY_LOGGERS` (replacing an earlier one)."""
    global current
    current = tracker
    for name in LIBRARY_LOGGERS:
        library_log = logging.getLogger(name)
        for old in [f for f in library_log.filters if isinstance(f, OutageFilter)]:
            library_log.removeFilter(old)
        library_log.addFilter(OutageFilter(tracker))


#: The tracker of this process (a worker sets it at start); loops report outages to it.
current: DependencyTracker | None = None


def report(logger: logging.Logger, exc: BaseException, message: str, *args: object) -> None:
    """:func:`log_failure` against the process's tracker (:data:`current`)."""
    log_failure(current, logger, exc, message, *args)
