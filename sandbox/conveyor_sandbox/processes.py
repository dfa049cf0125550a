"""Child processes of the sandbox (operator, engine workers) with their logs in files."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
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


def describe_exit(code: int | None) -> str:
    """``"code 1"``, ``"code -9 (SIGKILL)"``: an exit code as people read it."""
    if code is None:
        return "no exit code (still running)"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"code {code} ({signal.Signals(-code).name})"
    return f"code {code}"


@dataclass
class RestartBudget:
    """When to restart a crashed process, and when to stop trying.

    :meth:`crashed` records a crash at ``now`` (monotonic seconds) and returns the delay
    before the restart: none for the first crash in ``window`` seconds, then 0.5 s doubling
    up to ``max_delay``; or None once more than ``limit`` crashes fell within ``window``
    seconds, which means "give up". Crashes older than ``window`` are forgotten, so an
    occasional crash never adds up to giving up.
    """

    limit: int = 5
    window: float = 60.0
    max_delay: float = 5.0
    crashes: deque[float] = field(default_factory=deque)

    def crashed(self, now: float) -> float | None:
        self.crashes.append(now)
        while self.crashes and self.crashes[0] <= now - self.window:
            self.crashes.popleft()
        recent = len(self.crashes)
        if recent > self.limit:
            return None
        return 0.0 if recent == 1 else min(0.5 * 2 ** (recent - 2), self.max_delay)
