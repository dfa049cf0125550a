"""Redaction of secret values: one pure :class:`Redactor` built from the values a worker
holds, applied to everything it stores, caches, publishes or logs.

A value is replaced wherever it occurs, in these forms (each one a way a program or a
server commonly writes it back):

* as is, and with surrounding whitespace stripped (a Secret made ``--from-file`` often
  ends with a newline the header never carried);
* JSON-escaped (``json.dumps`` with and without ``ensure_ascii``): a response body that
  echoes the value inside a JSON string;
* percent-encoded (RFC 3986 ``quote`` and the form encoding ``quote_plus``): a URL or
  query string echoed back (httpbin's ``/anything``);
* base64 and base64url (RFC 4648 §4, §5) at any byte offset: HTTP basic auth
  (``base64("user:" + password)``, RFC 7617) and tokens echoed inside a longer encoded
  string. Since the bytes before the value shift its encoding, the part of the encoding
  that depends on the value alone is matched for each of the three alignments; the one or
  two characters at its edges (mixing neighbouring bytes) stay.

Not covered: other encodings (hex, HTML entities, a value split or transformed by the
task's own code) and values shorter than :data:`MIN_SECRET_CHARS`, which cannot be
replaced without destroying unrelated text: the worker does not provide those at all
(see :mod:`conveyor_engine.worker.mounts`).
"""

from __future__ import annotations

import base64
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

#: Shortest value (in characters, after stripping whitespace) that can be redacted.
MIN_SECRET_CHARS = 4
#: Shortest base64 fragment matched: shorter ones would hit unrelated encoded text too often.
_MIN_ENCODED_CHARS = 4


def marker(secret: str, key: str) -> str:
    """What replaces a value of ``secret``'s ``key``: ``[redacted secret payments.token]``."""
    return f"[redacted secret {secret}.{key}]"


def _base64_cores(value: bytes, alphabet: str) -> set[str]:
    """The parts of the base64 (``alphabet``: ``"std"`` or ``"url"``) encoding of
    ``value`` that depend on ``value`` alone, for each of the 3 offsets it may start at
    inside a longer encoded string (unpadded)."""
    encode = base64.b64encode if alphabet == "std" else base64.urlsafe_b64encode
    cores = set()
    for offset in range(3):
        text = encode(b"\0" * offset + value).decode()
        # Character i holds bits [6i, 6i + 6); the value's bits are [8 * offset, 8 * end).
        first = math.ceil(8 * offset / 6)
        last = (8 * (offset + len(value))) // 6
        core = text[first:last]
        if len(core) >= _MIN_ENCODED_CHARS:
            cores.add(core)
    return cores


def forms(value: str) -> set[str]:
    """Every form of ``value`` that is redacted (see the module's docstring); empty for a
    value shorter than :data:`MIN_SECRET_CHARS` once stripped."""
    found: set[str] = set()
    if len(value.strip()) < MIN_SECRET_CHARS:
        return found
    for text in {value, value.strip()}:
        found.add(text)
        found.add(json.dumps(text)[1:-1])
        found.add(json.dumps(text, ensure_ascii=False)[1:-1])
        found.add(quote(text, safe=""))
        found.add(quote_plus(text, safe=""))
        raw = text.encode()
        found |= _base64_cores(raw, "std") | _base64_cores(raw, "url")
    return found


class Redactor:
    """Replaces every form of every held value with its :func:`marker`.

    ``values``: ``{secret name: {key: value}}``, the values a worker holds (values shorter
    than :data:`MIN_SECRET_CHARS` are skipped: see :func:`forms`); ``more``: further
    ``(secret, key, value)`` triples (values no longer held). When two values share a
    form, the longer form wins, then the first secret and key in sorted order. Pure and
    immutable; build a new one when the values change.
    """

    def __init__(self, values: Mapping[str, Mapping[str, str]] | None = None, *,
                 more: Iterable[tuple[str, str, str]] = ()) -> None:
        held = [(s, k, v) for s, keys in (values or {}).items() for k, v in keys.items()]
        replacement: dict[str, str] = {}
        for secret, key, value in sorted([*held, *more]):
            for form in forms(value):
                replacement.setdefault(form, marker(secret, key))
        self._replacement = replacement
        # Longest first: where forms overlap, the longest match is the one replaced.
        ordered = sorted(replacement, key=lambda f: (-len(f), f))
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def text(self, text: str) -> str:
        """``text`` with every held value's forms replaced."""
        if self._pattern is None:
            return text
        return self._pattern.sub(lambda m: self._replacement[m.group(0)], text)

    def value(self, value: Any) -> Any:
        """``value`` with every string in it (dict keys too, at any depth, in dicts, lists
        and tuples) redacted; other values are returned as they are."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value


class RedactingFilter(logging.Filter):
    """A logging filter (put it on handlers) that redacts each record's message and its
    exception text with the redactor ``source()`` returns at that moment (the worker's,
    which grows when Secrets are re-read). Never drops a record."""

    def __init__(self, source: Any) -> None:
        super().__init__()
        self._source = source
        self._formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        redactor: Redactor = self._source()
        if not redactor:
            return True
        record.msg = redactor.text(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text once set, so the traceback is redacted too.
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)
        return True


def install_log_filter(source: Any, logger: logging.Logger | None = None) -> RedactingFilter:
    """Put a :class:`RedactingFilter` reading ``source()`` on every handler of ``logger``
    (the root logger by default; a filter on a logger would miss its children's records).
    Returns the filter."""
    redacting = RedactingFilter(source)
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(redacting)
    return redacting
