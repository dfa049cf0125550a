"""Request headers the ``http`` task adds: ``Authorization`` from ``auth``, ``Idempotency-Key``.

Pure (no I/O), tested as tables (``tests/unit/test_http_headers.py``). Values here are
usually secrets (``${{ secrets.payments.token }}``), so no error raised here ever quotes a
value: messages name the field and what was expected only.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

AUTHORIZATION = "Authorization"
IDEMPOTENCY_KEY = "Idempotency-Key"

# fullmatch, not "^...$": "$" also matches before a trailing newline.
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN_RE = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 7617 §2: user-id and password MUST NOT contain control characters (C0 and DEL;
# C1 too, as RFC 5234's CTL is only ASCII but no sane credential holds them).
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class BasicAuth(BaseModel):
    """``auth.basic``: ``username`` and ``password`` for HTTP Basic (RFC 7617).

    ``username`` must not contain ``:`` (RFC 7617 §2: the first colon separates the two);
    neither may contain control characters. Both are sent UTF-8 encoded (the ``charset``
    RFC 7617 §2.1 defines). ``ValueError`` names the field, never the value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str
    password: str

    @field_validator("username")
    @classmethod
    def _username(cls, value: str) -> str:
        if ":" in value:
            raise ValueError("must not contain ':' (RFC 7617 §2)")
        if _CONTROL_RE.search(value):
            raise ValueError("must not contain control characters (RFC 7617 §2)")
        return value

    @field_validator("password")
    @classmethod
    def _password(cls, value: str) -> str:
        if _CONTROL_RE.search(value):
            raise ValueError("must not contain control characters (RFC 7617 §2)")
        return value


class HttpAuth(BaseModel):
    """``auth`` of an ``http`` task: exactly one of

    - ``bearer``: a token sent as ``Authorization: Bearer <token>`` (RFC 6750 §2.1); it
      must have the ``b64token`` syntax there (letters, digits, ``-._~+/``, then ``=``
      padding), which JWTs and common opaque tokens have;
    - ``basic``: :class:`BasicAuth`, sent as ``Authorization: Basic <base64(user:pass)>``.

    ``ValueError`` names the field, never the value.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    bearer: str | None = None
    basic: BasicAuth | None = None

    @field_validator("bearer")
    @classmethod
    def _bearer(cls, value: str | None) -> str | None:
        if value is not None and not _B64TOKEN_RE.fullmatch(value):
            raise ValueError("expected a token of letters, digits, '-', '.', '_', '~', '+', "
                             "'/' and trailing '=' (RFC 6750 §2.1 b64token); the value is "
                             "not shown")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> HttpAuth:
        if (self.bearer is None) == (self.basic is None):
            raise ValueError("set exactly one of auth.bearer and auth.basic")
        return self


def authorization(auth: HttpAuth) -> str:
    """The ``Authorization`` field value for ``auth``: ``"Bearer <token>"`` (RFC 6750 §2.1)
    or ``"Basic <base64 of UTF-8 'user:password'>"`` (RFC 7617 §2)."""
    if auth.bearer is not None:
        return f"Bearer {auth.bearer}"
    assert auth.basic is not None
    pair = f"{auth.basic.username}:{auth.basic.password}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"


def has_header(headers: Mapping[str, str], name: str) -> bool:
    """Whether ``headers`` holds ``name``; field names are case-insensitive (RFC 9110 §5.1)."""
    return any(key.lower() == name.lower() for key in headers)


def idempotency_value(key: str) -> str:
    """``key`` as the draft's field value: a Structured Field String (RFC 8941 §3.3.3),
    i.e. in double quotes with ``\\`` and ``"`` escaped
    (draft-ietf-httpapi-idempotency-key-header §2: "Its value MUST be a String")."""
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def added_headers(headers: Mapping[str, str], *, auth: HttpAuth | None, idempotency_key: str,
                  send_idempotency_key: bool) -> dict[str, str]:
    """``headers`` plus what the task adds.

    - ``Authorization`` from ``auth`` (the params model already refused ``auth`` together
      with an ``Authorization`` header).
    - ``Idempotency-Key: "<execution_id>/<task_name>"`` (``idempotency_key``, the same on
      every attempt of the task) unless ``send_idempotency_key`` is False or ``headers``
      sets the field itself (any case), whose value then wins.
    """
    out = dict(headers)
    if auth is not None:
        out[AUTHORIZATION] = authorization(auth)
    if send_idempotency_key and not has_header(headers, IDEMPOTENCY_KEY):
        out[IDEMPOTENCY_KEY] = idempotency_value(idempotency_key)
    return out
