"""Compiled workflows by content hash: process memory (bounded), then Redis, then PostgreSQL."""

from __future__ import annotations

import asyncio
from collections import OrderedDict

import orjson

from .cache import Cache
from .compiler import CompiledWorkflow
from .metrics import CACHE_REQUESTS
from .store import Store

#: Compiled versions kept in memory unless ``CONVEYOR_WORKFLOW_CACHE_SIZE`` says otherwise.
DEFAULT_CACHE_SIZE = 256


class WorkflowCatalog:
    """Looks up compiled workflows; content-addressed, so no entry is ever stale.

    Process memory holds at most ``max_size`` compiled versions, least recently used
    dropped first (a long-lived worker or operator would otherwise keep every version it
    ever saw: issue 9). A dropped version is compiled again from Redis or PostgreSQL when
    next needed. Compiling runs in a thread (``asyncio.to_thread``) so a large workflow
    never stalls the event loop, and with it lease renewal; concurrent look-ups of one
    version share one compile.
    """

    def __init__(self, store: Store, cache: Cache, max_size: int = DEFAULT_CACHE_SIZE) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, got {max_size}")
        self._store = store
        self._cache = cache
        self._max_size = max_size
        self._compiled: OrderedDict[str, CompiledWorkflow] = OrderedDict()
        self._loading: dict[str, asyncio.Task[CompiledWorkflow]] = {}

    @property
    def max_size(self) -> int:
        """Most compiled versions kept in memory (``CONVEYOR_WORKFLOW_CACHE_SIZE``)."""
        return self._max_size

    def __len__(self) -> int:
        """Compiled versions held in memory now (at most ``max_size``)."""
        return len(self._compiled)

    def __contains__(self, content_hash: object) -> bool:
        """Whether the version is in memory now (no look-up further down)."""
        return content_hash in self._compiled

    def remember(self, workflow: CompiledWorkflow) -> None:
        """Keep an already compiled workflow in process memory (most recently used)."""
        self._compiled[workflow.content_hash] = workflow
        self._compiled.move_to_end(workflow.content_hash)
        while len(self._compiled) > self._max_size:
            self._compiled.popitem(last=False)

    async def get(self, content_hash: str, name: str) -> CompiledWorkflow:
        """The compiled workflow for ``content_hash``.

        Raises ``LookupError`` when no layer has it (the execution refers to a version
        that was never stored, which only a damaged database can cause).
        """
        found = self._compiled.get(content_hash)
        if found is not None:
            self._compiled.move_to_end(content_hash)
            CACHE_REQUESTS.labels("workflow", "memory").inc()
            return found
        loading = self._loading.get(content_hash)
        if loading is None:
            # A task of its own: a caller cancelled mid-load does not cancel the others'.
            loading = asyncio.create_task(self._load(content_hash, name),
                                          name=f"load workflow {content_hash[:15]}")
            self._loading[content_hash] = loading
            loading.add_done_callback(self._loaded)
        return await asyncio.shield(loading)

    def _loaded(self, task: asyncio.Task[CompiledWorkflow]) -> None:
        for content_hash, loading in list(self._loading.items()):
            if loading is task:
                del self._loading[content_hash]
        if not task.cancelled():
            task.exception()  # retrieved: every waiter may have been cancelled meanwhile

    async def _load(self, content_hash: str, name: str) -> CompiledWorkflow:
        text = await self._cache.workflow(content_hash)
        if text is not None:
            CACHE_REQUESTS.labels("workflow", "redis").inc()
            workflow = await asyncio.to_thread(CompiledWorkflow.from_json, name, text)
            self.remember(workflow)
            return workflow
        CACHE_REQUESTS.labels("workflow", "miss").inc()
        stored = await self._store.load_workflow(content_hash)
        if stored is None:
            raise LookupError(f"workflow version {content_hash} is not stored")
        name = stored[0]
        workflow = await asyncio.to_thread(
            CompiledWorkflow.from_json, name, orjson.dumps(stored[1]).decode())
        self.remember(workflow)
        await self._cache.put_workflow(content_hash, workflow.to_json())
        return workflow
