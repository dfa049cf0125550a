"""The redactor (pure): every form of a held value is replaced, nothing else is."""

from __future__ import annotations

import base64
import json
import logging
from urllib.parse import quote, quote_plus

import pytest

from conveyor_engine.redaction import MIN_SECRET_CHARS, RedactingFilter, Redactor, forms

TOKEN = "s3cr3t/Tok+en=42"
VALUES = {"payments": {"token": TOKEN, "user": "api-user", "password": "pa ss\"wörd"},
          "tiny": {"pin": "123"}}
R = Redactor(VALUES)
T = "[redacted secret payments.token]"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(("text", "expected"), [
    (f"Bearer {TOKEN}", f"Bearer {T}"),
    (f"{TOKEN}{TOKEN}", T + T),
    (json.dumps({"h": f"Bearer {TOKEN}"}), json.dumps({"h": f"Bearer {T}"})),
    (f"?t={quote(TOKEN, safe='')}", f"?t={T}"),
    (f"?t={quote_plus(TOKEN)}", f"?t={T}"),
    # Basic auth of user:password (RFC 7617): the password's part of the encoding goes.
    ("Basic " + b64("api-user:" + VALUES["payments"]["password"]), None),
    # The token base64-encoded at each of the three alignments inside a longer string.
    (b64(TOKEN), None), (b64("x" + TOKEN), None), (b64("xy" + TOKEN), None),
    (base64.urlsafe_b64encode(("xy" + TOKEN).encode()).decode(), None),
    (json.dumps("pa ss\"wörd"), '"[redacted secret payments.password]"'),
    (json.dumps("pa ss\"wörd", ensure_ascii=True), '"[redacted secret payments.password]"'),
    ("nothing secret here: 123 pin", "nothing secret here: 123 pin"),
    (f"  {TOKEN}\n", f"  {T}\n"),
])
def test_every_form_of_a_value_is_replaced(text: str, expected: str | None) -> None:
    out = R.text(text)
    if expected is not None:
        assert out == expected
    for value in ("s3cr3t", "Tok+en", "pa ss", "wörd"):
        assert value not in out
    if expected is None:  # an encoded form: no long run of the original encoding is left
        assert "[redacted secret payments." in out
        assert len(out.split("]")[-1]) <= 4


def test_a_value_from_a_file_matches_without_its_newline() -> None:
    r = Redactor({"s": {"k": "abcdef-token\n"}})
    assert r.text("Bearer abcdef-token") == "Bearer [redacted secret s.k]"


def test_short_values_are_not_redacted_and_have_no_forms() -> None:
    assert forms("123") == set() and forms("  ab \n") == set()
    assert len(forms("abcd")) > 0 and MIN_SECRET_CHARS == 4
    assert not Redactor({"tiny": {"pin": "123"}})
    assert R.text("pin 123") == "pin 123"


def test_values_keys_nested_and_other_types() -> None:
    value = {"a": [TOKEN, {"k": (1, TOKEN)}], TOKEN: None, "n": 3, "b": True}
    assert R.value(value) == {"a": [T, {"k": (1, T)}], T: None, "n": 3, "b": True}
    assert Redactor().value(value) is value


def test_older_values_can_be_kept() -> None:
    r = Redactor({"p": {"t": "new-value"}}, more=[("p", "t", "old-value")])
    assert r.text("old-value new-value") == "[redacted secret p.t] [redacted secret p.t]"


def test_log_filter_redacts_message_arguments_and_traceback() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "sent %s to %s",
                               (TOKEN, "host"), None)
    try:
        raise ValueError(f"bad token {TOKEN}")
    except ValueError:
        import sys
        record.exc_info = sys.exc_info()
    assert RedactingFilter(lambda: R).filter(record) is True
    line = logging.Formatter().format(record)
    assert TOKEN not in line
    assert f"sent {T} to host" in line and f"ValueError: bad token {T}" in line
