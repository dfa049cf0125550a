"""The ``http`` task type: one HTTP request, its response kept as outputs.

Status classes and the meaning of individual codes follow RFC 9110 (HTTP Semantics, §15);
``429`` is from RFC 6585 §4. Which failures are worth retrying is decided here, because only
the task type knows whether trying again could help.
"""

from __future__ import annotations

import codecs
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ..locks import TOKEN_HEADER, header_value
from ..retries import RETRY_AFTER_STATUSES, TIMEOUT, parse_retry_after
from .base import Failed, Outcome, Succeeded, TaskContext, TaskType
from .http_egress import EGRESS_DENIED, EgressDenied
from .http_headers import AUTHORIZATION, HttpAuth, added_headers, has_header

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})

#: ``408 Request Timeout`` (RFC 9110 §15.5.9) and ``429 Too Many Requests`` (RFC 6585 §4)
#: say "the same request may succeed later"; every other 4xx says the request itself is
#: wrong, so repeating it unchanged is pointless.
RETRYABLE_4XX = frozenset({408, 429})

#: Characters of the response body quoted in the error of an unexpected status.
ERROR_BODY_CHARS = 200

# RFC 9110 §5.1 (field names are tokens, §5.6.2) and §5.5 (field values: visible ASCII,
# space and tab). Checked up front so a bad header is a validation error, not a failure
# that would be retried; httpx encodes header values as ASCII by default.
_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_FIELD_VALUE_RE = re.compile(r"^[\t\x20-\x7e]*$")

StatusCode = Annotated[int, Field(ge=100, le=599)]


class HttpParams(BaseModel):
    """Parameters of an ``http`` task (camelCase on the wire).

    - ``url``: absolute ``http://`` or ``https://`` URL (required).
    - ``method``: one of :data:`METHODS`, any case; stored upper-case. Default ``GET``.
    - ``headers``: request header fields; names are RFC 9110 tokens, values visible ASCII.
    - ``query``: query parameters added to those already in ``url`` (a name present in
      both takes the value from ``query``); booleans are sent as ``true``/``false``.
    - ``json`` (Python ``json_body``): a request body sent as JSON. ``None`` means no
      JSON body, so a literal JSON ``null`` cannot be sent.
    - ``body``: a request body sent as UTF-8 text. Mutually exclusive with ``json``.
    - ``expectedStatus``: statuses that count as success; empty means any 2xx
      (RFC 9110 §15.3). Each is in 100..599.
    - ``maxResponseBytes``: most body bytes kept as output; the worker's
      ``max_output_bytes`` caps it (the smaller wins).
    - ``allowTruncated``: keep a JSON body longer than the cap as truncated ``text``
      (``truncated: true``) instead of failing. Default false: a JSON body cut short cannot
      be parsed, and a downstream ``outputs.json`` would not exist (issue 9).
    - ``auth``: ``{bearer: <token>}`` or ``{basic: {username, password}}``
      (:class:`~.http_headers.HttpAuth`), sent as ``Authorization``; mutually exclusive with
      an ``Authorization`` header. Its errors never quote the value (it is usually a secret).
    - ``idempotencyKey``: send ``Idempotency-Key`` (default true; see
      :func:`~.http_headers.added_headers`). An ``Idempotency-Key`` header in ``headers``
      replaces the default value.

    Invalid values raise pydantic's ``ValidationError`` naming the field.
    """

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )

    url: str
    method: str = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # ``json`` would shadow ``BaseModel.json``, hence the Python name.
    json_body: Any = Field(None, alias="json")
    body: str | None = None
    expected_status: list[StatusCode] = Field(default_factory=list)
    max_response_bytes: int | None = Field(None, ge=0)
    allow_truncated: bool = False
    auth: HttpAuth | None = None
    idempotency_key: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        try:
            url = httpx.URL(value)
        except httpx.InvalidURL as exc:
            raise ValueError(f"url: {value!r} is not a valid URL: {exc}") from exc
        if url.scheme not in ("http", "https"):
            raise ValueError(f"url: {value!r} must start with http:// or https://")
        if not url.host:
            raise ValueError(f"url: {value!r} has no host")
        return value

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        upper = value.upper()
        if upper not in METHODS:
            raise ValueError(
                f"method: {value!r} is not supported; expected one of {', '.join(sorted(METHODS))}"
            )
        return upper

    @field_validator("headers", mode="before")
    @classmethod
    def _header_scalars(cls, value: Any) -> Any:
        # A header value is text on the wire; a whole-string template such as
        # "${{ task.attempt }}" yields a number, which should be sent as its text.
        if isinstance(value, dict):
            return {k: (str(v).lower() if isinstance(v, bool) else str(v))
                    if isinstance(v, int | float) else v for k, v in value.items()}
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, field_value in value.items():
            if not _TOKEN_RE.match(name):
                raise ValueError(f"headers: {name!r} is not a valid header name (RFC 9110 §5.1)")
            if not _FIELD_VALUE_RE.match(field_value):
                raise ValueError(
                    f"headers: the value of {name!r} must be printable ASCII without line "
                    f"breaks (RFC 9110 §5.5)"
                )
        return value

    @model_validator(mode="after")
    def _one_body(self) -> HttpParams:
        if self.json_body is not None and self.body is not None:
            raise ValueError("json and body are mutually exclusive; set one of them")
        if self.auth is not None and has_header(self.headers, AUTHORIZATION):
            raise ValueError("auth and headers.Authorization are mutually exclusive; set "
                             "the credentials in auth only")
        return self


def _origin_and_path(url: httpx.URL) -> str:
    """``url`` without userinfo, query and fragment, for error messages.

    Error text is stored in PostgreSQL and summarised in resource status, and credentials
    are commonly carried in userinfo or the query string.
    """
    return str(url.copy_with(username=None, password=None, query=None, fragment=None))


def _content_type(headers: httpx.Headers) -> str:
    """The media type (lower case, no parameters) of the response, or ``""``.

    Content-Type is a singleton field (RFC 9110 §8.3); when a server sends it more than
    once the last one wins, as in the WHATWG Fetch standard's "extract a MIME type".
    """
    values = headers.get_list("content-type")
    if not values:
        return ""
    return values[-1].split(";", 1)[0].strip().lower()


def is_json_media_type(media_type: str) -> bool:
    """True for ``application/json`` and structured-syntax ``+json`` types (RFC 6839 §3.1)."""
    return media_type == "application/json" or media_type.endswith("+json")


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259 §6) and PostgreSQL jsonb rejects them.
    raise ValueError(f"{name} is not valid JSON")


def decode_text(data: bytes, charset: str | None, *, complete: bool) -> str:
    """Decode ``data`` as text in ``charset`` (UTF-8 when absent or unknown).

    Undecodable bytes become U+FFFD. When ``complete`` is False (a truncated body) a
    multi-byte character cut at the end is dropped rather than turned into U+FFFD. NUL
    characters are replaced by U+FFFD too, because PostgreSQL text and jsonb cannot
    store them and outputs end up there.
    """
    try:
        decoder = codecs.getincrementaldecoder(charset or "utf-8")(errors="replace")
    except LookupError:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    return decoder.decode(data, final=complete).replace("\x00", "\ufffd")


def body_outputs(
    data: bytes, media_type: str, charset: str | None, *, truncated: bool
) -> dict[str, Any]:
    """The body part of the outputs: ``{"json": value}`` or ``{"text": str}``.

    JSON is parsed only when ``media_type`` is a JSON type and the body is complete; a
    body that does not parse (or holds NaN/Infinity) is returned as ``text`` instead, so a
    server sending a wrong content type does not fail the task.
    """
    if is_json_media_type(media_type) and not truncated:
        try:
            # RFC 8259 §8.1: JSON exchanged between systems is UTF-8; json.loads also
            # accepts UTF-16/32 with detection, which covers legacy servers.
            return {"json": json.loads(data, parse_constant=_reject_constant)}
        except (ValueError, RecursionError):
            pass
    return {"text": decode_text(data, charset, complete=not truncated)}


def _with_lock_tokens(headers: dict[str, str], ctx: TaskContext) -> dict[str, str]:
    """``headers`` plus ``Conveyor-Lock-Token: name=token, ...`` when the attempt holds
    locks, so the resource can refuse a writer whose token is older than one it has seen
    (Kleppmann's fencing tokens); a header of that name set in params is kept as is."""
    if not ctx.locks or any(n.lower() == TOKEN_HEADER.lower() for n in headers):
        return headers
    return {**headers, TOKEN_HEADER: header_value(ctx.locks)}


def response_headers(headers: httpx.Headers) -> dict[str, str]:
    """Response header fields as a dict with lower-case names.

    A field sent several times is joined with ``", "``, the combination RFC 9110 §5.3
    defines (lossy for ``Set-Cookie``, which is acceptable for workflow outputs).
    """
    out: dict[str, str] = {}
    for name, value in headers.multi_items():
        out[name] = f"{out[name]}, {value}" if name in out else value
    return out


def is_retryable_status(status: int) -> bool:
    """Whether an unexpected ``status`` is worth retrying.

    5xx are server errors (RFC 9110 §15.6), often transient (overload, deploys, upstream
    timeouts); 408 and 429 ask the client to try later (:data:`RETRYABLE_4XX`). Any other
    status is a property of the request and would repeat.
    """
    return status >= 500 or status in RETRYABLE_4XX


def truncated_json_message(where: str, cap: int, params: HttpParams,
                           headers: httpx.Headers) -> str:
    """Why a JSON response longer than ``cap`` failed its task: the request, the size when
    the server said it (``Content-Length``), the cap and which setting set it, and the
    two ways out."""
    length = headers.get("content-length")
    size = f" (Content-Length {length})" if length and length.isdigit() else ""
    which = ("params.maxResponseBytes" if params.max_response_bytes is not None
             and params.max_response_bytes <= cap else "CONVEYOR_MAX_OUTPUT_BYTES")
    return (f"{where}: the JSON response body{size} is larger than the cap of {cap} bytes "
            f"({which}); a JSON body cut short cannot be parsed. Raise "
            f"params.maxResponseBytes (at most CONVEYOR_MAX_OUTPUT_BYTES), or set "
            f"params.allowTruncated: true to keep the first {cap} bytes as text")


async def _read_capped(response: httpx.Response, cap: int) -> bytes:
    """Read at most ``cap + 1`` decoded body bytes: one byte more tells truncation apart
    from a body exactly ``cap`` long, without ever holding a huge body in memory."""
    buffer = bytearray()
    async for chunk in response.aiter_bytes():
        buffer += chunk
        if len(buffer) > cap:
            break
    return bytes(buffer[: cap + 1])


class HttpTask(TaskType):
    """Send one HTTP request with the worker's shared ``httpx.AsyncClient``.

    Outputs (all JSON-serialisable):

    - ``statusCode``: int.
    - ``headers``: dict of lower-case name to value (see :func:`response_headers`).
    - ``json`` (when the response is JSON, complete and valid) or ``text`` (otherwise).
    - ``truncated``: True when the body was longer than the cap (``maxResponseBytes``,
      at most ``resources.max_output_bytes``); the body is then cut to the cap and kept
      as ``text`` only. A JSON body (:func:`is_json_media_type`) longer than the cap
      fails the task instead, not retryable, naming the cap, unless ``allowTruncated``.

    Timeouts: with a task ``timeout`` (``ctx.timeout``) every network operation of the
    request may take that long, and the worker bounds the whole attempt by it; without
    one, the shared client's timeout applies (``CONVEYOR_HTTP_TIMEOUT_SECONDS``, per
    operation). Before issue 9 a fixed 60 s client timeout cut longer tasks short.

    Failures: a status outside ``expectedStatus`` (any 2xx when empty) gives
    ``Failed("HTTP <status> from <METHOD> <url> (expected <codes>): <first 200 chars of
    body>")`` (``(empty body)`` when there is none), retryable
    per :func:`is_retryable_status`, with ``status_code`` set (what ``retryOn`` matches)
    and, on 429 and 503, ``retry_after`` from the ``Retry-After`` field
    (:func:`~conveyor_engine.retries.parse_retry_after`). Transport errors (refused
    connections, timeouts, protocol errors) are retryable and name the exception type;
    their ``kind`` is ``Timeout`` for timeouts, else the exception's class name
    (``ConnectError``). Redirects are followed or not as the shared client is configured.
    An address the worker's egress guard refuses (:mod:`.http_egress`; the first request
    or any redirect hop) fails without retry, kind ``EgressDenied``, naming the host, the
    address, the rule and ``spec.egress.allow``.
    """

    name: ClassVar[str] = "http"
    Params: ClassVar[type[BaseModel]] = HttpParams

    async def run(self, params: BaseModel, ctx: TaskContext) -> Outcome:
        assert isinstance(params, HttpParams)
        cap = ctx.resources.max_output_bytes
        if params.max_response_bytes is not None:
            cap = min(cap, params.max_response_bytes)

        request_kwargs: dict[str, Any] = {}
        if params.json_body is not None:
            request_kwargs["json"] = params.json_body
        elif params.body is not None:
            request_kwargs["content"] = params.body.encode("utf-8")

        url = httpx.URL(params.url)
        if params.query:
            # Merged into the URL here because httpx's ``params=`` replaces a query string
            # already in the URL instead of adding to it.
            url = url.copy_merge_params(params.query)
        where = f"{params.method} {_origin_and_path(url)}"
        if ctx.timeout is not None:
            # The task's own limit governs, not the client's default (issue 9).
            request_kwargs["timeout"] = httpx.Timeout(ctx.timeout.total_seconds())
        try:
            async with ctx.resources.http.stream(
                params.method,
                url,
                headers=_with_lock_tokens(added_headers(
                    params.headers, auth=params.auth, idempotency_key=ctx.idempotency_key,
                    send_idempotency_key=params.idempotency_key), ctx) or None,
                **request_kwargs,
            ) as response:
                data = await _read_capped(response, cap)
        except EgressDenied as exc:
            # A refused address would be refused again: no retry (issue 11 item 5).
            return Failed(f"{where}: {exc}", retryable=False, kind=EGRESS_DENIED)
        except httpx.HTTPError as exc:
            detail = str(exc) or "no detail"
            kind = TIMEOUT if isinstance(exc, httpx.TimeoutException) else type(exc).__name__
            return Failed(f"{where}: {type(exc).__name__}: {detail}", retryable=True,
                          kind=kind)

        truncated = len(data) > cap
        data = data[:cap]
        status = response.status_code
        charset = response.charset_encoding

        if params.expected_status:
            ok = status in params.expected_status
        else:
            ok = 200 <= status <= 299
        if not ok:
            excerpt = decode_text(data, charset, complete=not truncated)[:ERROR_BODY_CHARS]
            wanted = (", ".join(str(code) for code in params.expected_status)
                      if params.expected_status else "2xx")
            body = f": {excerpt}" if excerpt.strip() else " (empty body)"
            retry_after = (parse_retry_after(response.headers.get("retry-after"),
                                             datetime.now(UTC))
                           if status in RETRY_AFTER_STATUSES else None)
            return Failed(
                f"HTTP {status} from {where} (expected {wanted}){body}",
                retryable=is_retryable_status(status), status_code=status,
                retry_after=retry_after,
            )

        media_type = _content_type(response.headers)
        if truncated and is_json_media_type(media_type) and not params.allow_truncated:
            return Failed(truncated_json_message(where, cap, params, response.headers),
                          retryable=False)

        outputs: dict[str, Any] = {
            "statusCode": status,
            "headers": response_headers(response.headers),
        }
        outputs.update(
            body_outputs(data, media_type, charset, truncated=truncated)
        )
        outputs["truncated"] = truncated
        return Succeeded(outputs)
