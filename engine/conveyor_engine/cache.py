"""The Redis cache in front of PostgreSQL: execution headers, task outputs, workflow specs.

Redis first, PostgreSQL on a miss (then the entry is put back), so a flushed or rebuilt
Redis only costs a few reads. Entries of a running execution expire after
:data:`TTL_SECONDS`; once the execution is final (it finished, failed or was cancelled) its
header and outputs expire after :data:`FINISHED_TTL_SECONDS`, so Redis does not hold
finished runs (PostgreSQL keeps their history; a late reader misses and reads it there).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from .keys import Keys
from .phases import EXECUTION_FINAL, ExecutionPhase
from .store.records import ExecutionHeader

#: One day: long enough for any execution that is actively running tasks to stay cached.
TTL_SECONDS = 24 * 3600
#: Five minutes: what a finished execution's entries live for after it became final. Long
#: enough for a late duplicate delivery of its last attempts to be acknowledged from the
#: cache; everything else reads finished runs from PostgreSQL.
FINISHED_TTL_SECONDS = 300


def _time_text(value: datetime | None) -> str:
    """A header time as cached: ISO 8601, or ``""`` for None."""
    return value.isoformat() if value is not None else ""


def _time(text: str | None) -> datetime | None:
    """A cached header time back (None for ``""`` or a header cached before times were)."""
    return datetime.fromisoformat(text) if text else None


class Cache:
    """Typed access to the cached entries under one key prefix."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._redis = redis
        self._keys = keys

    def add_header(self, pipe: Pipeline, header: ExecutionHeader) -> None:
        """Queue the write of an execution header in ``pipe``."""
        key = self._keys.execution(header.execution_id)
        pipe.hset(key, mapping={
            "workflow": header.workflow_name, "hash": header.workflow_hash,
            "pool": header.pool, "inputs": orjson.dumps(header.inputs).decode(),
            "created": _time_text(header.created_at),
            "scheduled": _time_text(header.scheduled_time),
        })
        final = ExecutionPhase(header.phase) in EXECUTION_FINAL
        pipe.expire(key, FINISHED_TTL_SECONDS if final else TTL_SECONDS)

    def add_finished(self, pipe: Pipeline, execution_id: str) -> None:
        """Queue in ``pipe`` the short expiry (:data:`FINISHED_TTL_SECONDS`) of the cached
        header and outputs of an execution that has just become final. Must be queued after
        any write of its outputs in the same pipeline (a write sets the long TTL)."""
        pipe.expire(self._keys.execution(execution_id), FINISHED_TTL_SECONDS)
        pipe.expire(self._keys.outputs(execution_id), FINISHED_TTL_SECONDS)

    async def put_headers(self, headers: list[ExecutionHeader]) -> None:
        """Write execution headers back after a miss (one pipelined round trip)."""
        if headers:
            async with self._redis.pipeline(transaction=False) as pipe:
                for header in headers:
                    self.add_header(pipe, header)
                await pipe.execute()

    async def headers(self, execution_ids: list[str]) -> dict[str, ExecutionHeader]:
        """Cached headers of the given executions (misses are absent)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for eid in execution_ids:
                pipe.hgetall(self._keys.execution(eid))
            replies = await pipe.execute()
        found = {}
        for eid, fields in zip(execution_ids, replies, strict=True):
            if fields:
                found[eid] = ExecutionHeader(
                    eid, fields["workflow"], fields["hash"], fields["pool"],
                    orjson.loads(fields["inputs"]), ExecutionPhase.RUNNING,
                    _time(fields.get("created")), _time(fields.get("scheduled")),
                )
        return found

    def add_outputs(
        self, pipe: Pipeline, execution_id: str, outputs: dict[str, tuple[str, Any]]
    ) -> None:
        """Queue the write of ``{task: (phase, outputs)}`` for one execution in ``pipe``."""
        key = self._keys.outputs(execution_id)
        pipe.hset(key, mapping={
            name: orjson.dumps([phase, value]).decode() for name, (phase, value) in
            outputs.items()
        })
        pipe.expire(key, TTL_SECONDS)

    async def outputs(
        self, wanted: dict[str, list[str]]
    ) -> dict[str, dict[str, tuple[str, Any]]]:
        """``{execution: {task: (phase, outputs)}}`` for the wanted tasks that are cached."""
        order = [(eid, names) for eid, names in wanted.items() if names]
        if not order:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for eid, names in order:
                pipe.hmget(self._keys.outputs(eid), names)
            replies = await pipe.execute()
        found: dict[str, dict[str, tuple[str, Any]]] = {}
        for (eid, names), values in zip(order, replies, strict=True):
            hits = {}
            for name, raw in zip(names, values, strict=True):
                if raw is not None:
                    phase, value = orjson.loads(raw)
                    hits[name] = (phase, value)
            found[eid] = hits
        return found

    def add_workflow(self, pipe: Pipeline, content_hash: str, spec_json: str) -> None:
        """Queue caching a workflow spec by content hash (content-addressed: never stale)."""
        pipe.set(self._keys.workflow(content_hash), spec_json, ex=TTL_SECONDS * 7)

    async def put_workflow(self, content_hash: str, spec_json: str) -> None:
        """Cache a workflow spec by content hash now."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self.add_workflow(pipe, content_hash, spec_json)
            await pipe.execute()

    async def workflow(self, content_hash: str) -> str | None:
        """The cached workflow spec JSON for ``content_hash``, or None."""
        return await self._redis.get(self._keys.workflow(content_hash))
