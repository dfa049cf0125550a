"""Waiting for an engine execution to finish, as the integration tests do."""

from __future__ import annotations

from conveyor_engine.api import Engine
from conveyor_engine.store import ExecutionState
from tests.support.polling import eventually

#: The final execution phases.
FINAL = frozenset({"Succeeded", "Failed", "Cancelled"})


async def finished(engine: Engine, execution_id: str, timeout: float = 60.0
                   ) -> ExecutionState:
    """Poll PostgreSQL (``Engine.get``) until the execution is final (``timeout`` seconds,
    then ``AssertionError``); return its state."""
    return await eventually(lambda: engine.get(execution_id),
                            until=lambda s: s is not None and s.phase in FINAL,
                            timeout=timeout, what=f"execution {execution_id} to finish")
