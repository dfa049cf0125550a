"""``checksum``: an async task type that digests a text in chunks, heartbeating as it goes.

Params: ``text`` (required), ``algorithm`` (``sha256`` by default; any of
``hashlib.algorithms_guaranteed``), ``chunkBytes`` (bytes digested between heartbeats,
default 65536). Outputs: ``algorithm``, ``digest`` (hex), ``bytes`` (UTF-8 length).
"""

from __future__ import annotations

import asyncio
import hashlib

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from conveyor_engine.sdk import TaskContext, task_type


class ChecksumParams(BaseModel):
    """What to digest and how."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    text: str
    algorithm: str = "sha256"
    chunk_bytes: int = Field(65536, ge=1, le=16 * 1024 * 1024)

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
    for start in range(0, len(data), params.chunk_bytes):
        digest.update(data[start:start + params.chunk_bytes])
        ctx.heartbeat({"bytes": min(start + params.chunk_bytes, len(data))})
        await asyncio.sleep(0)  # let cancellation in between chunks
    return ChecksumOutputs(algorithm=params.algorithm, digest=digest.hexdigest(),
                           bytes=len(data))
