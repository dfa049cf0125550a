"""The HTTP handler: kmock's ``KubernetesEmulator`` with the sandbox's API semantics.

What is kmock's and what is ours:

- kmock (0.8) provides the HTTP server (:class:`kmock.Server`), the request log and the DSL of
  user-defined reactions (``handler['patch', kmock.resource(...)] << 500`` still works and takes
  precedence, e.g. for fault injection), the versioned object history
  (:class:`kmock.ObjectsArray`, mirrored by :class:`.store.Store`) and the built-in resource
  catalogue (used by :mod:`.registry`).
- Replaced: request parsing (kmock's crashes on ``/api/v1/namespaces`` and knows no PUT,
  ``watch=1`` or ``/watch/``), and the state handling of ``KubernetesEmulator._handle``, which
  mutates objects with its own merge rules before any handler runs and so cannot be combined
  with resourceVersions, status subresources, validation or JSON-patch semantics. Those live in
  :mod:`.rest`; discovery and OpenAPI in :mod:`.discovery` and :mod:`.openapi`.

Every request is recorded as a :class:`.requestinfo.RequestRecord` with its final status.
Errors are answered as ``Status`` objects; unexpected exceptions become 500 ``InternalError``
(with the exception in the message, and also kept in ``errors`` for tests to fail on).
"""

from __future__ import annotations

import json
import logging
import traceback
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import apps, enums, rendering

from . import discovery, errors, openapi
from .registry import Registry
from .requestinfo import RequestInfo, RequestRecord, parse_request_info
from .rest import ApiRequest, ResourceApi, json_response
from .store import Store

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 3 * 1024 * 1024


@attrs.define(kw_only=True)
class SandboxHandler(kmock.KubernetesEmulator):
    """An aiohttp-compatible handler serving the emulated Kubernetes API."""

    bookmark_interval: float = 5.0
    keep_history: bool = True
    registry: Registry = attrs.field(factory=Registry, init=False)
    store: Store = attrs.field(init=False)
    api: ResourceApi = attrs.field(init=False)
    records: list[RequestRecord] = attrs.field(factory=list, init=False)
    server_address: str = ""
    failures: list[BaseException] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        # Deliberately not calling KubernetesEmulator's: it would register its own fallback
        # reactions for discovery and CRUD; we route in _handle() instead.
        self.store = Store(keep_history=self.keep_history)
        if self.store.history is not None:
            self.store.history = self._objects  # kmock's own ObjectsArray: handler.objects
        self.api = ResourceApi(self.registry, self.store,
                               bookmark_interval=self.bookmark_interval)
        self.api.seed()

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
            self._requests.append(self._kmock_request(raw_request, info, query, body))
            response = await self._handle_api(raw_request, info, query, body, started)
        except errors.ApiError as exc:
            response = json_response(exc.to_status(), status=exc.code)
        except kmock.KubernetesError as exc:  # raised by user-defined kmock reactions
            status = errors.ApiError(exc.status, exc.reason or "InternalError",
                                     exc.message or repr(exc), {})
            response = json_response(status.to_status(), status=exc.status)
        except Exception as exc:  # a bug: answer 500, keep it for tests, log the traceback
            self.failures.append(exc)
            logger.error("Sandbox API server failed on %s %s:\n%s", raw_request.method,
                         raw_request.path_qs, traceback.format_exc())
            failure = errors.internal(f"{type(exc).__name__}: {exc}")
            response = json_response(failure.to_status(), status=500)
        if record.status is None:
            record.status = response.status
        return response

    def _kmock_request(self, raw_request: aiohttp.web.BaseRequest, info: RequestInfo,
                       query: dict[str, str], body: bytes) -> rendering.Request:
        """The request as kmock's DSL sees it (for user-defined reactions and assertions)."""
        try:
            data: Any = json.loads(body) if body else None
        except ValueError:
            data = None
        actions = {
            "get": enums.action.FETCH, "list": enums.action.LIST, "watch": enums.action.WATCH,
            "create": enums.action.CREATE, "patch": enums.action.UPDATE,
            "update": enums.action.UPDATE, "delete": enums.action.DELETE,
        }
        resource = kmock.resource(info.group, info.version, info.resource) if (
            info.is_resource) else None
        return rendering.Request(
            id=len(self._requests),
            raw_request=raw_request,
            url=raw_request.url,
            method=raw_request.method,
            params=query,
            headers=dict(raw_request.headers),
            cookies=dict(raw_request.cookies),
            body=body,
            text=body.decode("utf-8", errors="replace"),
            data=data,
            action=actions.get(info.verb) if info.is_resource else None,
            resource=resource,
            namespace=info.namespace or None,
            name=info.name or None,
            subresource=info.subresource or None,
        )

    async def _handle_api(self, raw_request: aiohttp.web.BaseRequest, info: RequestInfo,
                          query: dict[str, str], body: bytes,
                          started: Any) -> aiohttp.web.StreamResponse:
        # User-defined kmock reactions first (only if any were declared).
        if self._payloads:
            try:
                return await apps.RawHandler._handle(self, self._requests[-1])
            except NotImplementedError:
                pass  # no reaction matched: serve the emulated API
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
