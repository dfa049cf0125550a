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
