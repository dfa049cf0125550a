"""Real engine worker processes (``python -m conveyor_engine``) for integration tests."""

from __future__ import annotations

import tempfile
from pathlib import Path

from conveyor_sandbox.processes import ManagedProcess


class WorkerProcess(ManagedProcess):
    """One ``python -m conveyor_engine`` subprocess with its log in a temp file."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        log_path = Path(tempfile.mkstemp(prefix=f"conveyor-{name}-", suffix=".log")[1])
        super().__init__(name, "conveyor_engine", [], {**env, "CONVEYOR_WORKER_ID": name},
                         log_path)

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Block until the worker logs that it serves its pool; fail if it exits first."""
        self.wait_for("serving pool", timeout)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit code (SIGKILL after ``timeout``)."""
        return self.stop(timeout)


def worker_env(*, redis_url: str, database_url: str, key_prefix: str, pool: str,
               **extra: str) -> dict[str, str]:
    """``CONVEYOR_*`` variables for a worker of ``pool`` in this test session."""
    env = {
        "CONVEYOR_REDIS_URL": redis_url,
        "CONVEYOR_DATABASE_URL": database_url,
        "CONVEYOR_KEY_PREFIX": key_prefix,
        "CONVEYOR_POOL": pool,
    }
    env.update({f"CONVEYOR_{k.upper()}": str(v) for k, v in extra.items()})
    return env
