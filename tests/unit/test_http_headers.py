"""Headers the http task adds (issue 11 item 5): Authorization from ``auth`` (RFC 6750 bearer,
RFC 7617 basic) and ``Idempotency-Key`` (draft-ietf-httpapi-idempotency-key-header), as
tables; validation errors that name the field and never echo the value."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from conveyor_engine.sdk.testing import TaskEnvironment
from conveyor_engine.tasktypes.base import Failed
from conveyor_engine.tasktypes.http import HttpParams, HttpTask
from conveyor_engine.tasktypes.http_headers import HttpAuth, added_headers, authorization

SECRET = "s3cr3t-Value"


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.mark.parametrize(("auth", "expected"), [
    ({"bearer": "abc.DEF-123_~+/=="}, "Bearer abc.DEF-123_~+/=="),
    ({"bearer": "eyJhbGciOi.eyJzdWIi.SflKxwRJ"}, "Bearer eyJhbGciOi.eyJzdWIi.SflKxwRJ"),
    # RFC 7617 §2's own example
    ({"basic": {"username": "Aladdin", "password": "open sesame"}},
     "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
    ({"basic": {"username": "test", "password": ""}}, _basic("test", "")),
    # a colon is fine in the password (only the first one separates), UTF-8 (§2.1)
    ({"basic": {"username": "jürgen", "password": "a:b"}}, _basic("jürgen", "a:b")),
])
def test_authorization_value(auth: dict[str, Any], expected: str) -> None:
    assert authorization(HttpAuth.model_validate(auth)) == expected


@pytest.mark.parametrize(("params", "where", "fragment"), [
    ({"auth": {"bearer": f"{SECRET} x"}}, "auth.bearer", "RFC 6750"),
    ({"auth": {"bearer": f"{SECRET}\n"}}, "auth.bearer", "RFC 6750"),
    ({"auth": {"basic": {"username": f"{SECRET}:x", "password": "p"}}},
     "auth.basic.username", "must not contain ':'"),
    ({"auth": {"basic": {"username": f"{SECRET}\x00", "password": "p"}}},
     "auth.basic.username", "control characters"),
    ({"auth": {"basic": {"username": "u", "password": f"{SECRET}\r\n"}}},
     "auth.basic.password", "control characters"),
    ({"auth": {}}, "auth", "exactly one of auth.bearer and auth.basic"),
    ({"auth": {"bearer": SECRET, "basic": {"username": "u", "password": SECRET}}},
     "auth", "exactly one of auth.bearer and auth.basic"),
    ({"auth": {"bearer": SECRET}, "headers": {"authorization": f"Bearer {SECRET}"}},
     "", "auth and headers.Authorization are mutually exclusive"),
    ({"idempotencyKey": "maybe"}, "idempotencyKey", "boolean"),
])
async def test_bad_auth_names_the_field_and_never_the_value(
        params: dict[str, Any], where: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HttpParams.model_validate({"url": "http://127.0.0.1/", **params})
    locs = [".".join(str(p) for p in e["loc"]) for e in caught.value.errors()]
    assert any(loc.startswith(where) for loc in locs), locs
    # what a task records: the worker's wording of the same error
    outcome = await TaskEnvironment().run(HttpTask(), {"url": "http://127.0.0.1/", **params})
    assert isinstance(outcome, Failed) and not outcome.retryable
    assert fragment in outcome.error
    assert SECRET not in outcome.error


KEY = "0c1d2e3f/charge"


@pytest.mark.parametrize(("headers", "auth", "send", "expected"), [
    # default: the key is added as an RFC 8941 String
    ({}, None, True, {"Idempotency-Key": f'"{KEY}"'}),
    # the task's own header wins, whatever its case
    ({"idempotency-key": "mine"}, None, True, {"idempotency-key": "mine"}),
    ({"Idempotency-Key": "mine"}, None, True, {"Idempotency-Key": "mine"}),
    # turned off
    ({}, None, False, {}),
    ({"X-Other": "1"}, None, False, {"X-Other": "1"}),
    # auth adds Authorization next to the key
    ({}, {"bearer": "tok"}, True,
     {"Authorization": "Bearer tok", "Idempotency-Key": f'"{KEY}"'}),
])
def test_added_headers(headers: dict[str, str], auth: dict[str, Any] | None, send: bool,
                       expected: dict[str, str]) -> None:
    model = HttpAuth.model_validate(auth) if auth is not None else None
    assert added_headers(headers, auth=model, idempotency_key=KEY,
                         send_idempotency_key=send) == expected


def test_idempotency_key_quotes_and_escapes_as_an_sf_string() -> None:
    assert added_headers({}, auth=None, idempotency_key='a"b\\c',
                         send_idempotency_key=True) == {"Idempotency-Key": '"a\\"b\\\\c"'}


async def test_the_headers_reach_the_server(httpbin_url: str) -> None:
    """httpbin echoes what arrived: the bearer token, the key of this task, same on a retry."""
    env = TaskEnvironment(execution_id="exec-1", task_name="charge")
    params = {"url": f"{httpbin_url}/headers", "auth": {"bearer": "tok-123"}}
    first = await env.outputs(HttpTask(), params)
    env.attempt = 2
    second = await env.outputs(HttpTask(), params)
    for outputs in (first, second):
        sent = outputs["json"]["headers"]
        assert sent["Authorization"] == "Bearer tok-123"
        assert sent["Idempotency-Key"] == '"exec-1/charge"'
    off = await env.outputs(HttpTask(), {"url": f"{httpbin_url}/headers",
                                         "idempotencyKey": False})
    assert "Idempotency-Key" not in off["json"]["headers"]
