"""Expected waits are logged at INFO and never posted as Events; real failures stay errors."""

from __future__ import annotations

import logging

import pytest

from conveyor_operator.waits import ExpectedWaitFilter, install_filter, retry_later


def record(level: int, message: str) -> logging.LogRecord:
    return logging.LogRecord("kopf.objects", level, __file__, 1, message, None, None)


WAIT = str(retry_later("WorkflowNotFound", "workflow 'w' not found", 2))


@pytest.mark.parametrize(("level", "message", "expected"), [
    (logging.ERROR, f"Handler 'execution_created' failed temporarily: {WAIT}", logging.INFO),
    (logging.ERROR, "Handler 'execution_created' failed temporarily: connection refused",
     logging.ERROR),
    (logging.ERROR, f"Handler 'x' failed with an exception. Will retry. {WAIT}", logging.ERROR),
    (logging.WARNING, f"Handler 'x' failed temporarily: {WAIT}", logging.WARNING),
    (logging.INFO, "Handler 'execution_created' succeeded.", logging.INFO),
])
def test_only_marked_temporary_failures_are_lowered(level: int, message: str,
                                                     expected: int) -> None:
    item = record(level, message)
    assert ExpectedWaitFilter().filter(item) is True
    assert (item.levelno, item.levelname) == (expected, logging.getLevelName(expected))


def test_the_wait_names_its_reason_and_delay() -> None:
    error = retry_later("PoolNotFound", "no WorkerPool named 'gpu'", 7)
    assert str(error) == "waiting: PoolNotFound: no WorkerPool named 'gpu'"
    assert error.delay == 7


def test_installing_twice_adds_one_filter() -> None:
    logger = logging.getLogger("kopf.objects")
    before = list(logger.filters)
    try:
        install_filter()
        install_filter()
        assert sum(isinstance(f, ExpectedWaitFilter) for f in logger.filters) == 1
    finally:
        logger.filters[:] = before


@pytest.mark.parametrize(("previous", "expected"), [(None, 2.0), (2.0, 4.0), (16.0, 32.0),
                                                    (32.0, 60.0), (60.0, 60.0)])
def test_a_waiting_execution_is_rechecked_less_and_less_often(previous, expected) -> None:
    from conveyor_operator.waiting import next_delay

    assert next_delay(previous, 2.0, 60.0) == expected


class _RedisConnectionError(Exception):
    """Stands for redis-py's ConnectionError (classified by module and name)."""


_RedisConnectionError.__module__ = "redis.exceptions"
_RedisConnectionError.__name__ = "ConnectionError"


def _caused_by(cause: BaseException) -> Exception:
    try:
        raise RuntimeError("wrapped") from cause
    except RuntimeError as exc:
        return exc


@pytest.mark.parametrize(("exc", "unavailable"), [
    (ConnectionRefusedError(111, "refused"), True),
    (TimeoutError(), True),
    (_RedisConnectionError("Error 111 connecting"), True),
    (_caused_by(OSError("reset")), True),
    (ValueError("bad spec"), False),
    (KeyError("x"), False),
])
def test_which_failures_mean_a_store_is_unreachable(exc, unavailable) -> None:
    from conveyor_operator.dependencies import store_unavailable

    assert store_unavailable(exc) is unavailable


@pytest.mark.parametrize(("retry", "delay"), [(0, 0.5), (1, 1.0), (2, 2.0), (3, 4.0),
                                              (4, 5.0), (40, 5.0)])
def test_store_retries_back_off_to_a_cap_of_seconds(retry, delay) -> None:
    from conveyor_operator.dependencies import retry_delay

    assert retry_delay(retry, first=0.5, cap=5.0) == delay
