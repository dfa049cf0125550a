"""Task types: params validation, outputs and outcomes.

HTTP behaviour is tested against a real httpbin served on loopback (the ``httpbin_url``
fixture from ``tests/conftest.py``), never a mocked transport, so redirects, streaming,
content encodings and status handling are exercised as in production.
"""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from conveyor_engine import tasktypes
from conveyor_engine.tasktypes.base import Failed, Resources, Succeeded, Suspended, TaskContext
from conveyor_engine.tasktypes.http import (
    HttpParams,
    HttpTask,
    body_outputs,
    is_retryable_status,
)
from conveyor_engine.tasktypes.set import SetTask
from conveyor_engine.tasktypes.wait import WaitParams, WaitTask
from tests.support.scripted_http import scripted_server

# --------------------------------------------------------------------------- helpers


def make_ctx(
    client: httpx.AsyncClient | None = None,
    *,
    max_output_bytes: int = 1024 * 1024,
    resumed_from: datetime | None = None,
) -> TaskContext:
    return TaskContext(
        execution_id="exec-1",
        task_name="t",
        attempt=1,
        resources=Resources(
            http=client if client is not None else httpx.AsyncClient(),
            max_output_bytes=max_output_bytes,
        ),
        resumed_from=resumed_from,
    )


async def run_http(
    client: httpx.AsyncClient, params: dict[str, Any], *, max_output_bytes: int = 1024 * 1024
) -> Succeeded | Failed:
    task = tasktypes.get("http")
    outcome = await task.run(
        task.Params.model_validate(params), make_ctx(client, max_output_bytes=max_output_bytes)
    )
    assert isinstance(outcome, Succeeded | Failed)
    if isinstance(outcome, Succeeded):
        # Outputs are stored as JSON; anything else would fail at commit time.
        json.dumps(outcome.outputs, allow_nan=False)
    return outcome


def succeeded(outcome: object) -> dict[str, Any]:
    assert isinstance(outcome, Succeeded), outcome
    return outcome.outputs


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10.0) as c:
        yield c


@pytest.fixture
def refused_url() -> Iterator[str]:
    """A loopback URL whose port is bound but not listening: connections are refused.

    Keeping the socket bound (rather than picking a "free" port) means nothing else can
    start listening there during the test.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/get"
    finally:
        sock.close()


# --------------------------------------------------------------------------- registry


def test_the_builtin_types_are_entry_points_of_conveyor_itself() -> None:
    registry = tasktypes.load()
    builtin = [name for name in registry if registry.entry(name).provider.distribution
               == "conveyor"]
    assert builtin == ["http", "set", "wait", "workflow"]
    assert isinstance(tasktypes.get("http"), HttpTask)
    assert isinstance(tasktypes.get("set"), SetTask)
    assert isinstance(tasktypes.get("wait"), WaitTask)


def test_registry_unknown_type_raises_key_error() -> None:
    with pytest.raises(KeyError):
        tasktypes.get("shell")


def test_only_wait_ignores_timeout() -> None:
    builtin = ("http", "set", "wait")
    assert {name: tasktypes.get(name).honours_timeout for name in builtin} == {
        "http": True,
        "set": True,
        "wait": False,
    }


# --------------------------------------------------------------------------- params validation


@pytest.mark.parametrize(
    ("type_name", "params", "message"),
    [
        ("http", {}, "url"),
        ("http", {"url": "ftp://127.0.0.1/file"}, "must start with http:// or https://"),
        ("http", {"url": "file:///etc/passwd"}, "must start with http:// or https://"),
        ("http", {"url": "127.0.0.1/get"}, "must start with http:// or https://"),
        ("http", {"url": "http:///path"}, "url"),
        ("http", {"url": "http://127.0.0.1", "method": "FETCH"}, "method: 'FETCH'"),
        ("http", {"url": "http://127.0.0.1", "method": "TRACE"}, "method: 'TRACE'"),
        (
            "http",
            {"url": "http://127.0.0.1", "json": {"a": 1}, "body": "x"},
            "json and body are mutually exclusive",
        ),
        ("http", {"url": "http://127.0.0.1", "expectedStatus": [99]}, "expectedStatus"),
        ("http", {"url": "http://127.0.0.1", "expectedStatus": [600]}, "expectedStatus"),
        ("http", {"url": "http://127.0.0.1", "expectedStatus": ["ok"]}, "expectedStatus"),
        ("http", {"url": "http://127.0.0.1", "maxResponseBytes": -1}, "maxResponseBytes"),
        ("http", {"url": "http://127.0.0.1", "headers": {"Bad Name": "x"}}, "header name"),
        ("http", {"url": "http://127.0.0.1", "headers": {"X-A": "a\r\nX-B: b"}}, "line breaks"),
        ("http", {"url": "http://127.0.0.1", "timeoutSeconds": 3}, "timeoutSeconds"),
        ("wait", {}, "duration"),
        ("wait", {"duration": "soon"}, "duration: 'soon' is not a duration"),
        ("wait", {"duration": "-5s"}, "duration: '-5s' is negative"),
        ("wait", {"duration": "5s", "until": "x"}, "until"),
    ],
)
def test_invalid_params_are_rejected(type_name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        tasktypes.get(type_name).Params.model_validate(params)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("params", "attribute", "expected"),
    [
        ({"url": "http://127.0.0.1"}, "method", "GET"),
        ({"url": "http://127.0.0.1", "method": "post"}, "method", "POST"),
        ({"url": "https://127.0.0.1", "method": "Options"}, "method", "OPTIONS"),
        ({"url": "http://127.0.0.1", "json": {"a": [1]}}, "json_body", {"a": [1]}),
        ({"url": "http://127.0.0.1", "json_body": 5}, "json_body", 5),
        ({"url": "http://127.0.0.1", "expectedStatus": [201, 204]}, "expected_status", [201, 204]),
        ({"url": "http://127.0.0.1", "maxResponseBytes": 10}, "max_response_bytes", 10),
        ({"url": "http://127.0.0.1", "query": {"n": 1, "b": True}}, "query", {"n": 1, "b": True}),
        ({"url": "http://127.0.0.1"}, "expected_status", []),
    ],
)
def test_http_params_are_normalised(params: dict[str, Any], attribute: str, expected: Any) -> None:
    assert getattr(HttpParams.model_validate(params), attribute) == expected


# --------------------------------------------------------------------------- http: pure parts


@pytest.mark.parametrize(
    ("status", "retryable"),
    [
        (500, True),
        (502, True),
        (503, True),
        (599, True),
        (408, True),
        (429, True),
        (400, False),
        (401, False),
        (404, False),
        (422, False),
        (301, False),
        (200, False),
    ],
)
def test_retryable_statuses(status: int, retryable: bool) -> None:
    assert is_retryable_status(status) is retryable


@pytest.mark.parametrize(
    ("data", "media_type", "charset", "truncated", "expected"),
    [
        (b'{"a": 1}', "application/json", None, False, {"json": {"a": 1}}),
        (b'{"a": 1}', "application/problem+json", None, False, {"json": {"a": 1}}),
        (b"[1, 2]", "application/vnd.api+json", None, False, {"json": [1, 2]}),
        (b'{"a": 1}', "text/plain", None, False, {"text": '{"a": 1}'}),
        (b'{"a": ', "application/json", None, False, {"text": '{"a": '}),
        (b"", "application/json", None, False, {"text": ""}),
        (b"NaN", "application/json", None, False, {"text": "NaN"}),
        (b'{"a": 1}', "application/json", None, True, {"text": '{"a": 1}'}),
        (b"caf\xc3\xa9", "text/plain", "utf-8", False, {"text": "café"}),
        (b"caf\xe9", "text/plain", "iso-8859-1", False, {"text": "café"}),
        (b"caf\xe9", "text/plain", "no-such-charset", False, {"text": "caf\ufffd"}),
        # A multi-byte character cut by truncation is dropped, not half-decoded.
        (b"caf\xc3", "text/plain", "utf-8", True, {"text": "caf"}),
        (b"a\x00b", "application/octet-stream", None, False, {"text": "a\ufffdb"}),
    ],
)
def test_body_outputs(
    data: bytes, media_type: str, charset: str | None, truncated: bool, expected: dict[str, Any]
) -> None:
    assert body_outputs(data, media_type, charset, truncated=truncated) == expected


# --------------------------------------------------------------------------- http: real httpbin


async def test_http_get_json(client: httpx.AsyncClient, httpbin_url: str) -> None:
    out = succeeded(await run_http(client, {"url": f"{httpbin_url}/json"}))
    assert out["statusCode"] == 200
    assert out["truncated"] is False
    assert out["json"]["slideshow"]["title"] == "Sample Slide Show"
    assert "text" not in out


async def test_http_get_html_is_text(client: httpx.AsyncClient, httpbin_url: str) -> None:
    out = succeeded(await run_http(client, {"url": f"{httpbin_url}/html"}))
    assert out["statusCode"] == 200
    assert "Herman Melville" in out["text"]
    assert "json" not in out
    assert out["truncated"] is False


async def test_http_post_json_body_is_echoed(client: httpx.AsyncClient, httpbin_url: str) -> None:
    payload = {"name": "conveyor", "tags": ["a", "b"], "n": 3, "ok": True, "none": None}
    out = succeeded(
        await run_http(
            client, {"url": f"{httpbin_url}/anything", "method": "post", "json": payload}
        )
    )
    assert out["json"]["method"] == "POST"
    assert out["json"]["json"] == payload
    assert out["json"]["headers"]["Content-Type"] == "application/json"


async def test_http_text_body_is_sent(client: httpx.AsyncClient, httpbin_url: str) -> None:
    out = succeeded(
        await run_http(
            client,
            {
                "url": f"{httpbin_url}/anything",
                "method": "PUT",
                "body": "héllo",
                "headers": {"Content-Type": "text/plain; charset=utf-8"},
            },
        )
    )
    assert out["json"]["method"] == "PUT"
    assert out["json"]["data"] == "héllo"


async def test_http_query_is_merged_with_url_query(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    out = succeeded(
        await run_http(
            client,
            {
                "url": f"{httpbin_url}/get?z=9&a=0",
                "query": {"a": 1, "b": True, "c": "x y", "f": 1.5},
            },
        )
    )
    assert out["json"]["args"] == {"z": "9", "a": "1", "b": "true", "c": "x y", "f": "1.5"}


async def test_http_request_header_is_passed_through(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    out = succeeded(
        await run_http(
            client, {"url": f"{httpbin_url}/headers", "headers": {"X-Conveyor-Test": "yes"}}
        )
    )
    assert out["json"]["headers"]["X-Conveyor-Test"] == "yes"


async def test_http_response_headers_are_lowercase_and_joined(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    out = succeeded(
        await run_http(
            client,
            {"url": f"{httpbin_url}/response-headers", "query": {"X-Multi": "a"}},
        )
    )
    assert all(name == name.lower() for name in out["headers"])
    assert out["headers"]["x-multi"] == "a"
    assert out["headers"]["content-type"] == "application/json"

    # Two values of one field arrive as two header lines and are joined (RFC 9110 §5.3).
    out = succeeded(
        await run_http(client, {"url": f"{httpbin_url}/response-headers?X-Multi=a&X-Multi=b"})
    )
    assert out["headers"]["x-multi"] == "a, b"


async def test_http_last_content_type_decides_parsing(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    # httpbin adds the requested Content-Type after its own application/json.
    out = succeeded(
        await run_http(
            client,
            {"url": f"{httpbin_url}/response-headers", "query": {"Content-Type": "text/plain"}},
        )
    )
    assert "json" not in out
    assert json.loads(out["text"])["Content-Type"] == ["application/json", "text/plain"]

    out = succeeded(
        await run_http(
            client,
            {
                "url": f"{httpbin_url}/response-headers",
                "query": {"Content-Type": "application/problem+json"},
            },
        )
    )
    assert "text" not in out
    assert out["json"]["Content-Type"] == ["application/json", "application/problem+json"]


async def test_http_gzip_body_is_decoded(client: httpx.AsyncClient, httpbin_url: str) -> None:
    out = succeeded(await run_http(client, {"url": f"{httpbin_url}/gzip"}))
    assert out["headers"]["content-encoding"] == "gzip"
    assert out["json"]["gzipped"] is True


async def test_http_head_has_empty_text(client: httpx.AsyncClient, httpbin_url: str) -> None:
    out = succeeded(await run_http(client, {"url": f"{httpbin_url}/get", "method": "HEAD"}))
    assert out["statusCode"] == 200
    assert out["text"] == ""
    assert out["truncated"] is False


@pytest.mark.parametrize(
    ("status", "expected_status", "retryable"),
    [
        (503, [], True),
        (500, [], True),
        (408, [], True),
        (429, [], True),
        (404, [], False),
        (400, [], False),
        (200, [201], False),
        (503, [200, 201], True),
    ],
)
async def test_http_unexpected_status_fails(
    client: httpx.AsyncClient,
    httpbin_url: str,
    status: int,
    expected_status: list[int],
    retryable: bool,
) -> None:
    outcome = await run_http(
        client, {"url": f"{httpbin_url}/status/{status}", "expectedStatus": expected_status}
    )
    assert isinstance(outcome, Failed)
    wanted = ", ".join(map(str, expected_status)) or "2xx"
    assert outcome.error.startswith(
        f"HTTP {status} from GET {httpbin_url}/status/{status} (expected {wanted})")
    assert outcome.error.endswith("(empty body)")  # httpbin's /status answers have none
    assert outcome.retryable is retryable
    # what retry.retryOn matches (issue 9); httpbin sends no Retry-After
    assert (outcome.status_code, outcome.kind, outcome.retry_after) == (status, None, None)


@pytest.mark.parametrize(
    ("status", "expected_status"),
    [(201, [201]), (204, []), (202, []), (404, [404]), (503, [200, 503])],
)
async def test_http_expected_status_succeeds(
    client: httpx.AsyncClient, httpbin_url: str, status: int, expected_status: list[int]
) -> None:
    out = succeeded(
        await run_http(
            client, {"url": f"{httpbin_url}/status/{status}", "expectedStatus": expected_status}
        )
    )
    assert out["statusCode"] == status


async def test_http_error_quotes_at_most_200_chars_of_body(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    # 418 answers with a teapot drawing, longer than 200 characters after the prefix.
    outcome = await run_http(client, {"url": f"{httpbin_url}/status/418"})
    assert isinstance(outcome, Failed)
    assert outcome.retryable is False
    prefix = f"HTTP 418 from GET {httpbin_url}/status/418 (expected 2xx): "
    assert outcome.error.startswith(prefix)
    assert "teapot" in outcome.error
    assert 0 < len(outcome.error) - len(prefix) <= 200


async def test_http_error_hides_credentials_and_query(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    url = httpbin_url.replace("http://", "http://user:s3cret@") + "/status/500?token=t0ken"
    outcome = await run_http(client, {"url": url})
    assert isinstance(outcome, Failed)
    assert outcome.error.startswith(f"HTTP 500 from GET {httpbin_url}/status/500 (expected 2xx)")
    assert "s3cret" not in outcome.error
    assert "t0ken" not in outcome.error


async def test_http_large_body_is_truncated(client: httpx.AsyncClient, httpbin_url: str) -> None:
    out = succeeded(
        await run_http(client, {"url": f"{httpbin_url}/bytes/5000", "maxResponseBytes": 1024})
    )
    assert out["truncated"] is True
    assert "json" not in out
    # Random bytes decode to at most one character per byte.
    assert 0 < len(out["text"]) <= 1024


@pytest.mark.parametrize(
    ("size", "max_response_bytes", "max_output_bytes", "text", "truncated"),
    [
        (26, 10, 1024, "abcdefghij", True),
        (26, 1000, 5, "abcde", True),  # the worker's cap wins when smaller
        (26, None, 7, "abcdefg", True),
        (10, 10, 1024, "abcdefghij", False),  # exactly the cap is not truncated
        (26, 0, 1024, "", True),
    ],
)
async def test_http_cap_is_the_smaller_limit(
    client: httpx.AsyncClient,
    httpbin_url: str,
    size: int,
    max_response_bytes: int | None,
    max_output_bytes: int,
    text: str,
    truncated: bool,
) -> None:
    params: dict[str, Any] = {"url": f"{httpbin_url}/range/{size}"}
    if max_response_bytes is not None:
        params["maxResponseBytes"] = max_response_bytes
    out = succeeded(await run_http(client, params, max_output_bytes=max_output_bytes))
    assert (out["text"], out["truncated"]) == (text, truncated)


async def test_http_truncated_json_fails_naming_the_cap(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    """Issue 9: a JSON body cut short used to succeed without ``outputs.json``, which a
    downstream expression then met as "no such key"; now it fails, not retryable."""
    outcome = await run_http(client, {"url": f"{httpbin_url}/json", "maxResponseBytes": 20})
    assert isinstance(outcome, Failed) and outcome.retryable is False
    assert outcome.error.startswith(
        f"GET {httpbin_url}/json: the JSON response body (Content-Length ")
    assert "larger than the cap of 20 bytes (params.maxResponseBytes)" in outcome.error
    assert "params.allowTruncated: true" in outcome.error


async def test_http_truncated_json_names_the_worker_cap_when_it_is_smaller(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    outcome = await run_http(client, {"url": f"{httpbin_url}/json", "maxResponseBytes": 100},
                             max_output_bytes=30)
    assert isinstance(outcome, Failed)
    assert "larger than the cap of 30 bytes (CONVEYOR_MAX_OUTPUT_BYTES)" in outcome.error


async def test_http_truncated_json_allowed_is_text_only(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    out = succeeded(await run_http(client, {"url": f"{httpbin_url}/json",
                                            "maxResponseBytes": 20, "allowTruncated": True}))
    assert out["truncated"] is True
    assert "json" not in out
    assert len(out["text"]) == 20


async def test_http_complete_json_under_the_cap_is_parsed(
    client: httpx.AsyncClient, httpbin_url: str
) -> None:
    body = {"k": "v" * 50}
    out = succeeded(await run_http(client, {"url": f"{httpbin_url}/anything", "method": "POST",
                                            "json": body, "maxResponseBytes": 100_000}))
    assert out["truncated"] is False and out["json"]["json"] == body


async def test_http_connection_refused_is_retryable(
    client: httpx.AsyncClient, refused_url: str
) -> None:
    outcome = await run_http(client, {"url": refused_url})
    assert isinstance(outcome, Failed)
    assert outcome.retryable is True
    assert outcome.error.startswith(f"GET {refused_url}: ConnectError: ")
    assert (outcome.kind, outcome.status_code) == ("ConnectError", None)


async def test_http_timeout_is_retryable(httpbin_url: str) -> None:
    async with httpx.AsyncClient(timeout=0.3) as slow_client:
        outcome = await run_http(slow_client, {"url": f"{httpbin_url}/delay/3"})
    assert isinstance(outcome, Failed)
    assert outcome.retryable is True
    assert "ReadTimeout" in outcome.error
    assert outcome.kind == "Timeout"  # what retryOn: ["Timeout"] matches


async def test_http_task_timeout_replaces_the_client_timeout(httpbin_url: str) -> None:
    """Issue 9: the client's timeout (60 s in the worker, 0.3 s here) used to cut a
    request short even when the task's own ``timeout`` allowed longer."""
    task = tasktypes.get("http")
    params = task.Params.model_validate({"url": f"{httpbin_url}/delay/1"})
    async with httpx.AsyncClient(timeout=0.3) as short_client:
        ctx = make_ctx(short_client)
        outcome = await task.run(params, replace(ctx, timeout=timedelta(seconds=10)))
    assert isinstance(outcome, Succeeded), outcome
    assert outcome.outputs["statusCode"] == 200


# --------------------------------------------------------------------------- set


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"greeting": "hello", "count": 3, "ratio": 0.5, "ok": False, "nothing": None},
        {"nested": {"list": [1, {"deep": "x"}]}, "json": {"a": 1}},
        # Keys that are BaseModel attribute names are still plain data.
        {"model_config": 1, "model_dump": 2, "fields": 3},
    ],
)
async def test_set_outputs_are_its_params(params: dict[str, Any]) -> None:
    task = tasktypes.get("set")
    outcome = await task.run(task.Params.model_validate(params), make_ctx())
    assert outcome == Succeeded(params)


@pytest.mark.parametrize(("params", "cap", "error"), [
    ({"blob": "x" * 2000, "small": 1}, 1024,
     "outputs are 2021 bytes as JSON, more than the limit of 1024 bytes per task "
     "(CONVEYOR_MAX_OUTPUT_BYTES); the largest is params.blob (2002 bytes)"),
    # multi-byte characters count as their UTF-8 bytes, as stored
    ({"t": "é" * 600}, 1024,
     "outputs are 1208 bytes as JSON, more than the limit of 1024 bytes per task "
     "(CONVEYOR_MAX_OUTPUT_BYTES); the largest is params.t (1202 bytes)"),
])
async def test_set_outputs_over_the_cap_fail_not_retryable(
    params: dict[str, Any], cap: int, error: str
) -> None:
    task = tasktypes.get("set")
    outcome = await task.run(task.Params.model_validate(params),
                             make_ctx(max_output_bytes=cap))
    assert outcome == Failed(error, retryable=False)


async def test_set_outputs_at_the_cap_succeed() -> None:
    params = {"blob": "x" * (1024 - len('{"blob":""}'))}
    task = tasktypes.get("set")
    outcome = await task.run(task.Params.model_validate(params), make_ctx(max_output_bytes=1024))
    assert outcome == Succeeded(params)


async def test_set_outputs_are_a_copy() -> None:
    params = {"a": {"b": [1]}}
    task = tasktypes.get("set")
    outcome = await task.run(task.Params.model_validate(params), make_ctx())
    assert isinstance(outcome, Succeeded)
    outcome.outputs["a"]["b"].append(2)
    assert params == {"a": {"b": [1]}}


# --------------------------------------------------------------------------- wait


@pytest.mark.parametrize(
    ("duration", "delta"),
    [
        ("1s", timedelta(seconds=1)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("72h", timedelta(days=3)),
    ],
)
async def test_wait_first_run_suspends_until_now_plus_duration(
    duration: str, delta: timedelta
) -> None:
    task = tasktypes.get("wait")
    before = datetime.now(UTC)
    outcome = await task.run(WaitParams(duration=duration), make_ctx())
    after = datetime.now(UTC)
    assert isinstance(outcome, Suspended)
    assert outcome.until.tzinfo is not None
    assert outcome.until.utcoffset() == timedelta(0)
    assert before + delta <= outcome.until <= after + delta


@pytest.mark.parametrize(
    ("duration", "seconds"),
    [("1s", 1.0), ("250ms", 0.25), ("1h30m", 5400.0), ("1.5s", 1.5)],
)
async def test_wait_resumed_run_succeeds(duration: str, seconds: float) -> None:
    task = tasktypes.get("wait")
    ctx = make_ctx(resumed_from=datetime.now(UTC))
    outcome = await task.run(task.Params.model_validate({"duration": duration}), ctx)
    assert outcome == Succeeded({"waitedSeconds": seconds})


@pytest.mark.parametrize("duration", ["0s", "0"])
async def test_wait_zero_duration_succeeds_at_once(duration: str) -> None:
    task = tasktypes.get("wait")
    outcome = await task.run(task.Params.model_validate({"duration": duration}), make_ctx())
    assert outcome == Succeeded({"waitedSeconds": 0.0})


@pytest.mark.parametrize(("value", "text"), [(3, "3"), (1.5, "1.5"), (True, "true")])
def test_scalar_header_values_are_sent_as_text(value: object, text: str) -> None:
    params = HttpTask.Params.model_validate({"url": "http://127.0.0.1/", "headers": {"X": value}})
    assert params.headers == {"X": text}


# --------------------------------------------------------------------------- Retry-After

@pytest.mark.parametrize(("status", "retry_after", "expected"), [
    (503, "2", 2.0),
    (429, "7", 7.0),
    (500, "2", None),      # honoured on 429 and 503 only
    (503, "soon", None),   # not delay-seconds nor an HTTP-date: ignored
    (503, None, None),
])
async def test_http_retry_after_is_reported(client: httpx.AsyncClient, status: int,
                                            retry_after: str | None,
                                            expected: float | None) -> None:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    with scripted_server({"/x": [(status, headers)]}) as (base, _):
        outcome = await run_http(client, {"url": f"{base}/x"})
    assert isinstance(outcome, Failed)
    assert (outcome.status_code, outcome.retry_after, outcome.retryable) == (
        status, expected, True)


async def test_http_retry_after_date_is_seconds_from_now(client: httpx.AsyncClient) -> None:
    from email.utils import format_datetime
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    with scripted_server({"/x": [(503, {"Retry-After": when})]}) as (base, _):
        outcome = await run_http(client, {"url": f"{base}/x"})
    assert isinstance(outcome, Failed) and outcome.retry_after is not None
    assert 27 <= outcome.retry_after <= 30
