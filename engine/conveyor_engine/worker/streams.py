"""Redacting what a worker process writes outside logging: ``print()``, writes to
``sys.stdout``/``sys.stderr`` and ``warnings.warn`` from task code (the log filter,
:func:`conveyor_engine.redaction.install_log_filter`, only sees log records).

:func:`install` routes warnings through logging (``logging.captureWarnings``: logger
``py.warnings``, whose records the log filter redacts) and replaces ``sys.stdout`` and
``sys.stderr`` by :class:`RedactingStream` wrappers. A wrapper keeps text until a newline
(or ``flush()``) and writes whole lines redacted, so a value written in two calls
(``write("SuperSe")``, ``write("cretTok3n\\n")``) is still caught; a value split by a
newline or a flush is not. Lines longer than :data:`MAX_BUFFERED_CHARS` are written in
pieces, keeping the last :data:`KEPT_CHARS` characters back for the next write.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from ..redaction import Redactor

#: Most characters kept without a newline before some are written anyway (a bound on
#: memory for output that never ends a line).
MAX_BUFFERED_CHARS = 64 * 1024
#: Characters kept back when a long line is written in pieces (a value longer than this
#: split across the cut is not caught).
KEPT_CHARS = 4096


class RedactingStream(io.TextIOBase):
    """A text stream writing to ``inner`` what is written to it, each complete line (and
    what is left at ``flush()``; ``inner`` is flushed after each) with every value
    ``source()`` (the worker's current :class:`~conveyor_engine.redaction.Redactor`) holds
    replaced. Thread-safe: one lock orders buffering and writing."""

    def __init__(self, inner: TextIO, source: Callable[[], Redactor]) -> None:
        super().__init__()
        self._inner = inner
        self._source = source
        self._buffer = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Buffer ``text``; write every complete line redacted. Returns ``len(text)``."""
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            self._buffer += text
            end = self._buffer.rfind("\n") + 1
            if not end and len(self._buffer) > MAX_BUFFERED_CHARS:
                end = len(self._buffer) - KEPT_CHARS
            if end:
                ready, self._buffer = self._buffer[:end], self._buffer[end:]
                self._inner.write(self._source().text(ready))
                self._inner.flush()  # line-buffered, as on a terminal
        return len(text)

    def flush(self) -> None:
        """Write what is buffered (redacted) and flush ``inner``."""
        with self._lock:
            if self._buffer:
                ready, self._buffer = self._buffer, ""
                self._inner.write(self._source().text(ready))
            self._inner.flush()

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._inner.fileno()

    def isatty(self) -> bool:
        return self._inner.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._inner.encoding


def install(source: Callable[[], Redactor]) -> None:
    """Redact the process's ``sys.stdout``, ``sys.stderr`` and warnings with ``source()``
    (see the module docstring). Call once, after logging is set up (log handlers keep the
    streams they were given, already redacted by their filter)."""
    logging.captureWarnings(True)
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, RedactingStream):
            setattr(sys, name, RedactingStream(stream, source))
