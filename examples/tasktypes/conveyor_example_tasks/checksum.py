"""``checksum``: an async task type that digests a text in chunks, heartbeating as it goes.

Params: ``text`` (required), ``algorithm`` (``sha256`` by default; any of
``hashlib.algorithms_guaranteed``), ``chunkBytes`` (bytes digested between heartbeats,
default 65536), ``pauseSeconds`` (a pause after each chunk, default 0: pacing, as a reader
throttled by the service it reads from; it also makes a long task to try cancellation on).
Outputs: ``algorithm``, ``digest`` (hex), ``bytes`` (UTF-8 length).

It logs when an attempt starts and when one is interrupted, with the task's idempotency
key and attempt number (the sandbox's end-to-end tests count these lines).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from conveyor_engine.sdk import TaskContext, task_type

log = logging.getLogger(__name__)


class ChecksumParams(BaseModel):
    """What to digest and how."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    text: str
    algorithm: str = "sha256"
    chunk_bytes: int = Field(65536, ge=1, le=16 * 1024 * 1024)
    pause_seconds: float = Field(0.0, ge=0.0, le=60.0)

    @field_validator("algorithm")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in hashlib.algorithms_guaranteed:
            known = ", ".join(sorted(hashlib.algorithms_guaranteed))
            raise ValueError(f"unknown algorithm {value!r} (known: {known})")
        return value


class ChecksumOutputs(BaseModel):
    """The digest of ``text``."""

    algorithm: str
    digest: str
    bytes: int


@task_type(name="checksum", params=ChecksumParams, outputs=ChecksumOutputs,
           heartbeat_timeout=60)
async def checksum(params: ChecksumParams, ctx: TaskContext) -> ChecksumOutputs:
    """Digest ``params.text`` chunk by chunk; heartbeat with the bytes done after each."""
    data = params.text.encode()
    digest = hashlib.new(params.algorithm)
    done = 0
    log.info("checksum %s attempt %d: started", ctx.idempotency_key, ctx.attempt)
    try:
        for start in range(0, len(data), params.chunk_bytes):
            digest.update(data[start:start + params.chunk_bytes])
            done = min(start + params.chunk_bytes, len(data))
            ctx.heartbeat({"bytes": done})
            # Also where a cancellation lands (CancelledError), between chunks.
            await asyncio.sleep(params.pause_seconds)
    except asyncio.CancelledError:
        log.info("checksum %s attempt %d: interrupted after %d of %d bytes",
                 ctx.idempotency_key, ctx.attempt, done, len(data))
        raise  # cancellation must propagate: the worker records the attempt as cancelled
    return ChecksumOutputs(algorithm=params.algorithm, digest=digest.hexdigest(),
                           bytes=len(data))
