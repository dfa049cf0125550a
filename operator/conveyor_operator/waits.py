"""Expected waits are retried quietly: an Execution waiting for its Workflow is not an error.

kopf retries a handler that raises :class:`kopf.TemporaryError` and logs each retry at ERROR
level (and, when ``settings.posting.loggers`` is on, posts that line as an Event). For a wait
the status condition already explains (``WorkflowNotFound``, ``WorkflowNotReady``,
``PoolNotFound``), an ERROR every few seconds sends operators hunting for a fault that is
not there. Waits raised through :func:`retry_later` carry a marker; :class:`ExpectedWaitFilter`
lowers their retry log lines to INFO. Real temporary failures keep their ERROR level.
"""

from __future__ import annotations

import logging

import kopf

MARKER = "waiting: "
KOPF_OBJECTS_LOGGER = "kopf.objects"


def retry_later(reason: str, message: str, delay: float) -> kopf.TemporaryError:
    """The exception a handler raises to be retried after ``delay`` seconds, quietly.

    ``reason`` is the condition reason (CamelCase) and ``message`` its text; both appear in
    the INFO log line kopf writes for the retry.
    """
    return kopf.TemporaryError(f"{MARKER}{reason}: {message}", delay=delay)


class ExpectedWaitFilter(logging.Filter):
    """Lowers kopf's "failed temporarily" ERROR records for :func:`retry_later` waits to INFO.

    Every other record passes unchanged: a real temporary failure stays an ERROR and an Event.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR:
            message = record.getMessage()
            if "failed temporarily" in message and f": {MARKER}" in message:
                record.levelno = logging.INFO
                record.levelname = logging.getLevelName(logging.INFO)
        return True


def install_filter() -> None:
    """Attach :class:`ExpectedWaitFilter` to kopf's per-object logger, once."""
    logger = logging.getLogger(KOPF_OBJECTS_LOGGER)
    if not any(isinstance(f, ExpectedWaitFilter) for f in logger.filters):
        logger.addFilter(ExpectedWaitFilter())
