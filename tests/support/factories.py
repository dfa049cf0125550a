"""Building engine records for tests of code that consumes them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from conveyor_engine.store import ExecutionState, TaskState

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def execution_state(n_tasks: int, phase: str = "Running") -> ExecutionState:
    """An execution of ``n_tasks`` finished tasks (``t0`` failed when ``phase`` is Failed),
    started 75 s before :data:`NOW`; one task is counted open."""
    start = NOW - timedelta(seconds=75)
    tasks = tuple(
        TaskState(name=f"t{i}", type="set", phase="Failed" if i == 0 and phase == "Failed"
                  else "Succeeded", attempt=1, outputs={}, error="boom" * 100 if i == 0 else None,
                  message=None, started_at=start, finished_at=NOW, due_at=None)
        for i in range(n_tasks))
    return ExecutionState(
        execution_id="0b6c7a4e-1f1e-4a8e-9d8e-3c7a1b2c3d4e", idempotency_key="uid",
        workflow_name="ns/w", workflow_hash="sha256:" + "0" * 64, pool="default", inputs={},
        phase=phase, message=None, tasks_total=n_tasks, tasks_open=1, created_at=start,
        started_at=start, finished_at=NOW if phase != "Running" else None, updated_at=NOW,
        tasks=tasks)
