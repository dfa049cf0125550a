"""Signs of life of kopf's watches, for the liveness probe (issue 9, item 13).

kopf talks to the API through an aiohttp session; the operator logs in itself
(:func:`login`, a ``kopf.on.login`` handler) and gives kopf a session whose trace hooks
record, per resource plural, the monotonic time of the last bytes received by a list or
watch of that resource (:attr:`OperatorState.watches
<conveyor_operator.probes.OperatorState.watches>`). A healthy watch either delivers events
or is closed by the API server after ``timeoutSeconds`` and opened again (kopf lists, then
watches), so a watch silent for longer than ``CONVEYOR_WATCH_STALL_SECONDS`` (set above
kopf's ``server_timeout``) is stalled: ``/healthz`` fails and the kubelet restarts a zombie.
"""

from __future__ import annotations

import time
import types
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import kopf

from .probes import OperatorState


def collection_resource(path: str) -> str | None:
    """The resource plural of a collection request path (what a list or watch names), or
    None for an object, a subresource, or a non-resource path.

    ``/api/v1/pods``, ``/api/v1/namespaces/ns/pods``, ``/apis/g/v1/namespaces/ns/things``
    and ``/api/v1/namespaces`` name collections (API conventions: a resource path is
    ``/api[s]/[group/]version[/namespaces/{ns}]/{plural}[/{name}[/{subresource}]]``).
    """
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        rest = parts[2:]
    elif parts[:1] == ["apis"]:
        rest = parts[3:]
    else:
        return None
    if len(rest) >= 3 and rest[0] == "namespaces":
        rest = rest[2:]
    return rest[0] if len(rest) == 1 else None


def trace_config(state: OperatorState) -> aiohttp.TraceConfig:
    """Hooks that stamp ``state.watches[plural]`` whenever a list or watch of ``plural``
    receives response headers or body bytes; a watch is registered (clock started) when
    it is first requested."""
    trace = aiohttp.TraceConfig()

    async def started(_: Any, context: types.SimpleNamespace,
                      params: aiohttp.TraceRequestStartParams) -> None:
        resource = collection_resource(urlsplit(str(params.url)).path)
        context.resource = resource if params.method == "GET" else None
        if "watch=true" in (params.url.query_string or "") and resource:
            state.watches.setdefault(resource, time.monotonic())

    async def alive(_: Any, context: types.SimpleNamespace, __: Any) -> None:
        resource = getattr(context, "resource", None)
        if resource and resource in state.watches:
            state.watches[resource] = time.monotonic()

    trace.on_request_start.append(started)
    trace.on_response_chunk_received.append(alive)
    trace.on_request_end.append(alive)
    return trace


async def login(state: OperatorState, **kwargs: Any) -> kopf.AiohttpSession | None:
    """kopf's own login (kubernetes_asyncio's in-cluster or kubeconfig credentials), with
    a session carrying :func:`trace_config`. Built like kopf's default session."""
    info = await kopf.login_via_async_client(**kwargs)
    if info is None:
        return None
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ssl=info.as_ssl_context()),
        headers=info.as_http_headers(),
        trace_configs=[trace_config(state)],
    )
    return kopf.AiohttpSession(aiohttp_session=session, server=info.server,
                               default_namespace=info.default_namespace,
                               expiration=info.expiration, priority=info.priority)
