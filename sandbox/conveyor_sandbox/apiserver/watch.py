"""Watch streams: newline-delimited JSON events over a chunked ``application/json`` response.

Semantics of the API server's watch (API concepts, "Efficient detection of changes" and
"Semantics for watch"; k8s.io/apiserver/pkg/endpoints/handlers/watch.go):

- ``resourceVersion`` unset or ``"0"``: synthetic ``ADDED`` events for the current objects
  first, then changes. ``resourceVersion=N``: every change after N (410 ``Expired`` as an
  ``ERROR`` event when N is older than the retained history).
- Label/field selectors filter events; an object that starts or stops matching is reported as
  ``ADDED``/``DELETED`` (the watch cache's behaviour), so a filtered watch stays consistent.
- ``allowWatchBookmarks=true``: ``BOOKMARK`` events (only ``metadata.resourceVersion``) when idle.
- ``sendInitialEvents=true`` (watch-list): the current objects as ADDED, then a BOOKMARK
  annotated ``k8s.io/initial-events-end: "true"``.
- ``timeoutSeconds``: the stream ends cleanly after that long.
- The server's shutdown ends all streams.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import aiohttp.web

from . import errors
from .store import Change, StorageKey, Store

# The API server caps watches at a random 30..60 minutes; clients reconnect.
DEFAULT_TIMEOUT = 1800.0


@dataclasses.dataclass
class WatchSpec:
    """What one watch request asks for, already parsed and checked."""

    storage: StorageKey
    since_rv: int | None  # None: send the current objects as ADDED first
    matches: Callable[[dict[str, Any]], bool]
    render: Callable[[dict[str, Any]], dict[str, Any]]  # stored object -> event object
    initial: Callable[[], list[dict[str, Any]]]  # current objects (any order; filtered later)
    timeout: float
    bookmarks: bool
    bookmark_object: Callable[[int], dict[str, Any]]
    bookmark_interval: float = 5.0
    initial_events_end: bool = False  # sendInitialEvents=true: mark the end of the initial state


def parse_since(resource_version: str | None) -> int | None:
    """``None`` for "start with the current state", else the revision to resume after."""
    if resource_version in (None, "", "0"):
        return None
    try:
        return int(resource_version)
    except ValueError:
        raise errors.bad_request(f"invalid resource version: {resource_version!r}") from None


def transform(change: Change, matches: Callable[[dict[str, Any]], bool]) -> str | None:
    """The event type a filtered watcher sees for a change (``None``: not at all)."""
    now = matches(change.obj)
    before = change.old is not None and matches(change.old)
    if change.type == "ADDED":
        return "ADDED" if now else None
    if change.type == "DELETED":
        return "DELETED" if now or before else None
    if now and before:
        return "MODIFIED"
    if now:
        return "ADDED"
    if before:
        return "DELETED"
    return None


async def serve(
    raw_request: aiohttp.web.BaseRequest,
    store: Store,
    spec: WatchSpec,
    on_start: Callable[[int], None],
) -> aiohttp.web.StreamResponse:
    """Stream events until the timeout, the client leaving, or the server closing."""
    try:
        watcher, backlog = store.watch(spec.storage, spec.since_rv)
    except errors.ApiError as exc:
        # As the watch cache does: a 200 stream carrying one ERROR event with the Status.
        response = await _start(raw_request, on_start)
        await _write(response, {"type": "ERROR", "object": exc.to_status()})
        await response.write_eof()
        return response
    # Taken in the same synchronous step as the subscription: nothing falls in between.
    initial = spec.initial() if spec.since_rv is None else []
    response = None
    try:
        response = await _start(raw_request, on_start)
        for obj in initial:
            if spec.matches(obj):
                await _write(response, {"type": "ADDED", "object": spec.render(obj)})
        if spec.initial_events_end:
            marker = spec.bookmark_object(store.rv)
            marker["metadata"]["annotations"] = {"k8s.io/initial-events-end": "true"}
            await _write(response, {"type": "BOOKMARK", "object": marker})
        for change in backlog:
            await _emit(response, change, spec)
        deadline = time.monotonic() + spec.timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wait = min(remaining, spec.bookmark_interval) if spec.bookmarks else remaining
            try:
                change = await asyncio.wait_for(watcher.queue.get(), timeout=wait)
            except TimeoutError:
                if spec.bookmarks and deadline - time.monotonic() > 0:
                    await _write(response, {"type": "BOOKMARK",
                                            "object": spec.bookmark_object(store.rv)})
                continue
            if change is None:
                break
            await _emit(response, change, spec)
        await response.write_eof()
    except (ConnectionResetError, ConnectionError):
        pass  # the client went away; nothing to tell it
    finally:
        store.unwatch(watcher)
    return response if response is not None else aiohttp.web.Response(status=200)


async def _start(
    raw_request: aiohttp.web.BaseRequest, on_start: Callable[[int], None]
) -> aiohttp.web.StreamResponse:
    response = aiohttp.web.StreamResponse(status=200)
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    on_start(200)
    await response.prepare(raw_request)
    return response


async def _emit(response: aiohttp.web.StreamResponse, change: Change, spec: WatchSpec) -> None:
    kind = transform(change, spec.matches)
    if kind is not None:
        await _write(response, {"type": kind, "object": spec.render(change.obj)})


async def _write(response: aiohttp.web.StreamResponse, event: dict[str, Any]) -> None:
    await response.write(json.dumps(event, separators=(",", ":")).encode() + b"\n")
