"""Real engine worker processes (``python -m conveyor_engine``) for integration tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path


class WorkerProcess:
    """One ``python -m conveyor_engine`` subprocess with its log in a temp file."""

    def __init__(self, env: dict[str, str], name: str) -> None:
        self.log_path = Path(tempfile.mkstemp(prefix=f"conveyor-{name}-", suffix=".log")[1])
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "conveyor_engine"],
            env={**os.environ, **env, "CONVEYOR_WORKER_ID": name},
            stdout=self._log, stderr=subprocess.STDOUT,
        )

    def log(self) -> str:
        """Everything the worker printed so far."""
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float = 30.0) -> None:
        """Block until the worker logs that it serves its pool; fail if it exits first."""
        deadline = time.monotonic() + timeout
        while "serving pool" not in self.log():
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"worker not serving after {timeout}s:\n{self.log()}")
            time.sleep(0.05)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit code (SIGKILL after ``timeout``)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: the worker dies without any cleanup (a crashed pod)."""
        self.proc.kill()
        self.proc.wait()


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
