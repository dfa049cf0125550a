"""One resource request as the handlers see it (API meaning, HTTP details, decoded body),
and what they answer: a write's result and JSON responses with warnings."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp.web
import yaml

from .. import errors, fielderrors, protobuf
from ..requestinfo import RequestInfo

_BINARY_MEDIA_TYPES = frozenset({"application/vnd.kubernetes.protobuf", "application/cbor"})
_BODY_MEDIA_TYPES = ("application/json", "application/yaml")


@dataclasses.dataclass
class ApiRequest:
    """One resource request: its API meaning and HTTP details."""

    info: RequestInfo
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    raw: aiohttp.web.BaseRequest
    on_start: Callable[[int], None] = lambda status: None

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"

    def json(self) -> Any:
        """The decoded body: JSON, YAML, or protobuf for the kinds :mod:`.protobuf` knows
        (kubectl's typed clients send those); 415 for other binary encodings."""
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == protobuf.PROTOBUF:
            return protobuf.decode(self.body)
        if content_type in _BINARY_MEDIA_TYPES:
            raise errors.unsupported_media_type(content_type, _BODY_MEDIA_TYPES)
        if not self.body.strip():
            raise errors.bad_request("the request body is empty")
        try:
            return json.loads(self.body)
        except ValueError:
            content_type = self.headers.get("Content-Type", "")
            if "yaml" in content_type:
                try:
                    return yaml.safe_load(self.body)
                except yaml.YAMLError as exc:
                    raise errors.bad_request(f"invalid YAML: {exc}") from exc
            raise errors.bad_request(
                "the object provided is unrecognized (must be of type JSON): "
                f"{self.body[:80]!r}"
            ) from None


@dataclasses.dataclass
class _Result:
    """What a write produced: the object, the HTTP status, warnings for the client."""

    obj: dict[str, Any]
    status: int = 200
    warnings: list[str] = dataclasses.field(default_factory=list)


def json_response(body: Any, *, status: int = 200,
                  warnings: list[str] | None = None) -> aiohttp.web.Response:
    """A JSON response; ``warnings`` become ``Warning: 299 - "..."`` headers (RFC 7234)."""
    response = aiohttp.web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )
    for warning in warnings or []:
        response.headers.add("Warning", f'299 - {fielderrors.go_quote(warning)}')
    return response
