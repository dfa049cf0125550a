"""Child processes of the sandbox (operator, engine workers) with their logs in files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


class ProcessFailed(RuntimeError):
    """A child process exited early or did not become ready; the message holds its log tail."""


class ManagedProcess:
    """``python -m <module> <args>`` with ``env`` added, output appended to ``log_path``.

    ``pass_fds`` are file descriptors the child inherits (e.g. a listening socket).
    """

    def __init__(self, name: str, module: str, args: list[str], env: dict[str, str],
                 log_path: Path, *, pass_fds: tuple[int, ...] = ()) -> None:
        self.name = name
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env={**os.environ, **env}, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, pass_fds=pass_fds,
        )

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        """The last ``lines`` lines of the log."""
        return "\n".join(self.log().splitlines()[-lines:])

    def wait_for(self, text: str, timeout: float = 60.0) -> None:
        """Block until ``text`` appears in the log; :class:`ProcessFailed` on exit or timeout."""
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if self.proc.poll() is not None:
                raise ProcessFailed(f"{self.name} exited with code {self.proc.returncode}:\n"
                                    f"{self.tail()}")
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{self.name} not ready after {timeout:.0f}s:\n{self.tail()}")
            time.sleep(0.05)

    def check_alive(self) -> None:
        """Raise :class:`ProcessFailed` if the process has exited."""
        if self.proc.poll() is not None:
            raise ProcessFailed(f"{self.name} exited with code {self.proc.returncode}:\n"
                                f"{self.tail()}")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; return the exit code."""
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
        """SIGKILL at once (a crashed pod)."""
        self.proc.kill()
        self.proc.wait()
