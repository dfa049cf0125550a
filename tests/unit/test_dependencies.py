"""The dependency-state machine (one line down, one line up) and which errors are outages."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import pytest
import redis.asyncio
import redis.exceptions

from conveyor_engine.dependencies import (
    Change,
    DependencyState,
    DependencyTracker,
    dependency_of,
    log_failure,
    observe,
)

UP = DependencyState(True, 0.0)
DOWN_AT_10 = DependencyState(False, 10.0, 10.0, "TimeoutError: x")


@pytest.mark.parametrize(("state", "ok", "now", "expected", "change"), [
    # a failure while up: down at once, reported with how long it had been up
    (UP, False, 10.0, DOWN_AT_10, Change("redis", False, 10.0, "TimeoutError: x")),
    # more failures while down: no report, the last failure moves on
    (DOWN_AT_10, False, 11.0, DependencyState(False, 10.0, 11.0, "TimeoutError: x"), None),
    # a probe answers too soon after the last failure: still down, no report
    (DOWN_AT_10, True, 11.0, DOWN_AT_10, None),
    # a probe answers after a quiet period: up again, reported with the downtime
    (DOWN_AT_10, True, 12.5, DependencyState(True, 12.5, 10.0), Change("redis", True, 2.5, "")),
    # success while up: nothing
    (UP, True, 5.0, UP, None),
])
def test_observe(state, ok, now, expected, change) -> None:
    assert observe(state, dependency="redis", ok=ok, now=now, quiet=2.0,
                   reason="TimeoutError: x") == (expected, change)


class _Conn(OSError):
    pass


def _raised_in_module(module: str, exc: BaseException) -> BaseException:
    """``exc`` raised from code whose module is ``module`` (as a client library would)."""
    namespace = {"__name__": module}
    exec("def boom(e):\n    raise e\n", namespace)
    try:
        namespace["boom"](exc)
    except BaseException as caught:
        return caught
    raise AssertionError("not raised")


@pytest.mark.parametrize(("exc", "expected"), [
    (redis.exceptions.ConnectionError("Connection refused"), "redis"),
    (redis.exceptions.TimeoutError("Timeout reading from socket"), "redis"),
    (redis.exceptions.ReadOnlyError("READONLY You can't write against a read only replica"),
     "redis"),
    (redis.exceptions.BusyLoadingError("LOADING"), "redis"),
    (redis.exceptions.ClusterDownError("CLUSTERDOWN"), "redis"),
    (redis.exceptions.ResponseError("NOGROUP No such key"), None),  # a state to handle, not down
    (asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"), "postgres"),
    (asyncpg.exceptions.AdminShutdownError("terminating connection"), "postgres"),
    (asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
     "postgres"),
    (asyncpg.exceptions.InterfaceError("connection is closed"), "postgres"),
    (asyncpg.exceptions.InternalClientError(
        "cannot switch to state 12; another operation (2) is in progress"), "postgres"),
    (asyncpg.exceptions.UniqueViolationError("duplicate"), None),
    (ValueError("a bug"), None),
    (ConnectionRefusedError("refused"), None),  # raised by nobody we know
    (_raised_in_module("asyncpg.connect_utils", ConnectionRefusedError("refused")), "postgres"),
    (_raised_in_module("asyncpg.connection", TimeoutError()), "postgres"),  # command_timeout
    (_raised_in_module("redis.asyncio.connection", _Conn("reset")), "redis"),
])
def test_dependency_of(exc: BaseException, expected: str | None) -> None:
    assert dependency_of(exc) == expected


def test_dependency_of_follows_the_cause() -> None:
    try:
        try:
            raise redis.exceptions.ConnectionError("gone")
        except redis.exceptions.ConnectionError as inner:
            raise RuntimeError("while publishing") from inner
    except RuntimeError as outer:
        assert dependency_of(outer) == "redis"


async def test_a_timeout_cutting_a_redis_call_short_is_a_redis_outage() -> None:
    """``asyncio.wait_for`` around a Redis call on a black-holed server raises a builtin
    TimeoutError whose own frames are asyncio's; the cancelled Redis call is its cause."""
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)  # never answers
    port = server.sockets[0].getsockname()[1]
    client = redis.asyncio.Redis(host="127.0.0.1", port=port)
    try:
        with pytest.raises(TimeoutError) as caught:
            await asyncio.wait_for(client.ping(), 0.2)
        assert dependency_of(caught.value) == "redis"
    finally:
        await client.aclose()
        server.close()


class _Gauge:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def labels(self, name: str) -> _Gauge:
        self._name = name
        return self

    def set(self, value: float) -> None:
        self.values[self._name] = value


def test_tracker_logs_one_line_per_transition_and_sets_the_gauge(caplog) -> None:
    now = [0.0]
    gauge = _Gauge()
    tracker = DependencyTracker(quiet=1.0, clock=lambda: now[0], gauge=gauge)
    assert gauge.values == {"redis": 1, "postgres": 1} and tracker.up()
    caplog.set_level(logging.INFO)
    other = logging.getLogger("test.loop")
    for step in range(50):  # a loop retrying every 0.1 s during a 5 s outage
        now[0] = step * 0.1
        log_failure(tracker, other, redis.exceptions.TimeoutError("Timeout"), "fetch failed")
        tracker.record("redis", ok=False, reason="probe")
    assert not tracker.up() and tracker.down() == ["redis"] and gauge.values["redis"] == 0
    now[0] = 6.0
    assert tracker.record("redis", ok=True) == Change("redis", True, 6.0, "")
    assert tracker.up() and gauge.values["redis"] == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("redis is unreachable (TimeoutError: Timeout)")
    assert lines[1] == "redis is reachable again after 6.0s down"
    assert not any(r.exc_info for r in caplog.records)


def test_a_bug_keeps_its_traceback(caplog) -> None:
    tracker = DependencyTracker(quiet=1.0, clock=lambda: 0.0)
    try:
        raise ValueError("a bug")
    except ValueError as exc:
        log_failure(tracker, logging.getLogger("test.loop"), exc, "pass failed")
    assert caplog.records[-1].exc_info is not None and tracker.up()


def test_outage_filter_moves_a_library_traceback_to_the_tracker() -> None:
    from conveyor_engine.dependencies import OutageFilter

    tracker = DependencyTracker(quiet=1.0, clock=lambda: 0.0)
    outage = asyncpg.exceptions.CannotConnectNowError("the database system is shutting down")
    record = logging.LogRecord("asyncpg.pool", logging.WARNING, __file__, 1, "floor", (),
                               (type(outage), outage, None))
    assert OutageFilter(tracker).filter(record) is False and tracker.down() == ["postgres"]
    plain = logging.LogRecord("asyncpg.pool", logging.WARNING, __file__, 1, "x", (), None)
    assert OutageFilter(tracker).filter(plain) is True
