"""The HTTP handler: every request to the emulated Kubernetes API, served on aiohttp.

Requests are classified by :mod:`.requestinfo` (as the API server's ``RequestInfoFactory``
does), answered by an injected failure if a :mod:`.reactions` entry matches, else by the
resource handlers of :mod:`.rest`, or by discovery and OpenAPI (:mod:`.discovery`,
:mod:`.openapi`) for non-resource paths.

Every request is recorded as a :class:`.requestinfo.RequestRecord` with its final status.
Errors are answered as ``Status`` objects; unexpected exceptions become 500 ``InternalError``
(with the exception in the message, and also kept in ``failures`` for tests to fail on).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

import aiohttp.web

from . import discovery, errors, openapi
from .reactions import Reactions
from .registry import Registry
from .requestinfo import RequestInfo, RequestRecord, parse_request_info
from .rest import ApiRequest, ResourceApi, json_response
from .store import Store

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 3 * 1024 * 1024


class SandboxHandler:
    """An aiohttp low-level handler (``BaseRequest`` in, response out) serving the API.

    ``bookmark_interval`` (seconds) is how often idle watches that allow bookmarks get one;
    ``keep_history`` keeps every stored version of every object (:meth:`.store.Store.history`).
    """

    def __init__(self, *, bookmark_interval: float = 5.0, keep_history: bool = True) -> None:
        self.registry = Registry()
        self.store = Store(keep_history=keep_history)
        self.api = ResourceApi(self.registry, self.store, bookmark_interval=bookmark_interval)
        self.api.seed()
        self.reactions = Reactions()
        self.records: list[RequestRecord] = []
        self.failures: list[BaseException] = []
        self.server_address = ""

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        query = {key: raw_request.query[key] for key in raw_request.query}
        info = parse_request_info(raw_request.method, raw_request.path, query)
        record = RequestRecord.from_info(info, query, raw_request.headers.get("User-Agent", ""))
        self.records.append(record)
        # The API server accepts bodies up to 3 MiB (MaxRequestBodyBytes); aiohttp's default is 1.
        raw_request = raw_request.clone(client_max_size=MAX_BODY_BYTES)
        try:
            body = await raw_request.read()
        except aiohttp.web.HTTPRequestEntityTooLarge:
            too_large = errors.ApiError(413, "RequestEntityTooLarge",
                                        "the request is too large (limit: 3 MiB)", {})
            record.status = 413
            return json_response(too_large.to_status(), status=413)

        def started(status: int) -> None:
            record.status = status

        try:
            response = await self._handle_api(raw_request, info, query, body, started)
        except errors.ApiError as exc:
            response = json_response(exc.to_status(), status=exc.code)
        except Exception as exc:  # a bug: answer 500, keep it for tests, log the traceback
            self.failures.append(exc)
            logger.error("Sandbox API server failed on %s %s:\n%s", raw_request.method,
                         raw_request.path_qs, traceback.format_exc())
            failure = errors.internal(f"{type(exc).__name__}: {exc}")
            response = json_response(failure.to_status(), status=500)
        if record.status is None:
            record.status = response.status
        return response

    async def _handle_api(self, raw_request: aiohttp.web.BaseRequest, info: RequestInfo,
                          query: dict[str, str], body: bytes,
                          started: Any) -> aiohttp.web.StreamResponse:
        # Injected failures first: they stand for the server failing, whatever was asked.
        if self.reactions.stalls(info):  # a black hole: wait until the stall is lifted
            await self.reactions.lifted(info)
        injected = self.reactions.answer(info)
        if injected is not None:
            raise injected
        if info.is_resource:
            request = ApiRequest(info=info, query=query, headers=raw_request.headers, body=body,
                                 raw=raw_request, on_start=started)
            return await self.api.handle(request)
        return self._non_resource(raw_request, info)

    def _non_resource(self, raw_request: aiohttp.web.BaseRequest,
                      info: RequestInfo) -> aiohttp.web.StreamResponse:
        if info.method not in ("GET", "HEAD"):
            raise errors.method_not_allowed() if self._known_path(info.path) else (
                errors.resource_not_found())
        path = info.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        registry = self.registry
        document: Any = None
        if path == "/":
            document = discovery.root_paths(registry)
        elif path == "/version":
            document = discovery.server_version()
        elif path in ("/healthz", "/livez", "/readyz"):
            return aiohttp.web.Response(text="ok", content_type="text/plain")
        elif path == "/api":
            document = discovery.api_versions(self.server_address)
        elif path == "/apis":
            document = discovery.group_list(registry)
        elif len(parts) == 2 and parts[0] == "api":
            document = discovery.resource_list(registry, "", parts[1])
        elif len(parts) == 2 and parts[0] == "apis":
            document = discovery.api_group(registry, parts[1])
        elif len(parts) == 3 and parts[0] == "apis":
            document = discovery.resource_list(registry, parts[1], parts[2])
        elif path == "/openapi/v2":
            accept = raw_request.headers.get("Accept", "")
            if "protobuf" in accept:
                return aiohttp.web.Response(body=openapi.v2_document_protobuf(),
                                            content_type=openapi.OPENAPI_V2_PROTOBUF)
            document = openapi.v2_document_json()
        elif path == "/openapi/v3":
            document = openapi.v3_root(registry)
        elif path.startswith("/openapi/v3/"):
            gv = parts[2:]
            if len(gv) == 2 and gv[0] == "api":
                document = openapi.v3_document(registry, "", gv[1])
            elif len(gv) == 3 and gv[0] == "apis":
                document = openapi.v3_document(registry, gv[1], gv[2])
        if document is None:
            raise errors.resource_not_found()
        return json_response(document)

    @staticmethod
    def _known_path(path: str) -> bool:
        return path.startswith(("/api", "/apis", "/openapi", "/version"))
