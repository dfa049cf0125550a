"""The worker's redacting stdout/stderr wrapper: whole lines redacted, a value split across
writes still caught, flush writes what is left."""

from __future__ import annotations

import io
import threading

import pytest

from conveyor_engine.redaction import Redactor
from conveyor_engine.worker import streams
from conveyor_engine.worker.streams import RedactingStream

REDACTOR = Redactor({"payments": {"token": "SuperSecretTok3n"}})
MARKER = "[redacted secret payments.token]"


@pytest.mark.parametrize(("writes", "before_flush", "after_flush"), [
    (["token SuperSecretTok3n\n"], f"token {MARKER}\n", f"token {MARKER}\n"),
    (["token SuperSe", "cretTok3n\n"], f"token {MARKER}\n", f"token {MARKER}\n"),
    (["a\nSuperSe", "cretTok3n"], "a\n", f"a\n{MARKER}"),
    (["SuperSecretTok3n"], "", MARKER),
    (["x", "\n", "y\nz"], "x\ny\n", "x\ny\nz"),
])
def test_lines_are_written_redacted(writes, before_flush, after_flush) -> None:
    inner = io.StringIO()
    stream = RedactingStream(inner, lambda: REDACTOR)
    assert [stream.write(w) for w in writes] == [len(w) for w in writes]
    assert inner.getvalue() == before_flush
    stream.flush()
    assert inner.getvalue() == after_flush


def test_a_line_without_end_is_written_in_pieces_keeping_a_tail() -> None:
    inner = io.StringIO()
    stream = RedactingStream(inner, lambda: REDACTOR)
    stream.write("x" * (streams.MAX_BUFFERED_CHARS - 5) + "SuperSecretTok3n")
    assert inner.getvalue() == "x" * (streams.MAX_BUFFERED_CHARS + 11 - streams.KEPT_CHARS)
    stream.flush()
    assert inner.getvalue().endswith(MARKER) and "Tok3n" not in inner.getvalue()


def test_lines_written_from_threads_stay_whole() -> None:
    inner = io.StringIO()
    stream = RedactingStream(inner, lambda: REDACTOR)

    def write(n: int) -> None:
        for _ in range(200):
            stream.write(f"t{n} SuperSecretTok3n t{n}\n")

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = inner.getvalue().splitlines()
    assert sorted(set(lines)) == [f"t{n} {MARKER} t{n}" for n in range(4)]
    assert len(lines) == 800
