"""Compiled workflows by content hash: process memory, then Redis, then PostgreSQL."""

from __future__ import annotations

import orjson

from .cache import Cache
from .compiler import CompiledWorkflow
from .metrics import CACHE_REQUESTS
from .store import Store


class WorkflowCatalog:
    """Looks up compiled workflows; content-addressed, so no entry is ever stale."""

    def __init__(self, store: Store, cache: Cache) -> None:
        self._store = store
        self._cache = cache
        self._compiled: dict[str, CompiledWorkflow] = {}

    def remember(self, workflow: CompiledWorkflow) -> None:
        """Keep an already compiled workflow in process memory."""
        self._compiled[workflow.content_hash] = workflow

    async def get(self, content_hash: str, name: str) -> CompiledWorkflow:
        """The compiled workflow for ``content_hash``.

        Raises ``LookupError`` when no layer has it (the execution refers to a version
        that was never stored, which only a damaged database can cause).
        """
        found = self._compiled.get(content_hash)
        if found is not None:
            CACHE_REQUESTS.labels("workflow", "memory").inc()
            return found
        text = await self._cache.workflow(content_hash)
        if text is not None:
            CACHE_REQUESTS.labels("workflow", "redis").inc()
        else:
            CACHE_REQUESTS.labels("workflow", "miss").inc()
            stored = await self._store.load_workflow(content_hash)
            if stored is None:
                raise LookupError(f"workflow version {content_hash} is not stored")
            name = stored[0]
            workflow = CompiledWorkflow.from_json(name, orjson.dumps(stored[1]).decode())
            await self._cache.put_workflow(content_hash, workflow.to_json())
            self._compiled[content_hash] = workflow
            return workflow
        workflow = CompiledWorkflow.from_json(name, text)
        self._compiled[content_hash] = workflow
        return workflow

