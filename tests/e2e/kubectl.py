"""Run kubectl against a sandbox API server from async tests.

``Kubectl.run`` runs one command to completion; ``Kubectl.start`` starts a long-running one
(``get -w``, ``wait``) whose output ``read_until`` follows with a deadline. Every invocation
uses the test's kubeconfig and a private discovery cache (kubectl caches discovery per server
for hours; a private directory keeps tests independent).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Completed:
    """A finished kubectl command."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Kubectl:
    """kubectl bound to one kubeconfig and cache directory."""

    def __init__(self, kubeconfig: Path, cache_dir: Path, binary: str | None = None) -> None:
        found = binary or shutil.which("kubectl")
        if found is None:
            raise RuntimeError("kubectl is not on PATH")
        self.binary = found
        self.kubeconfig = kubeconfig
        self.cache_dir = cache_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
        self.env["KUBECONFIG"] = str(kubeconfig)

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        return [self.binary, f"--kubeconfig={self.kubeconfig}", f"--cache-dir={self.cache_dir}",
                *args]

    async def run(self, *args: str, stdin: str | None = None, check: bool = True,
                  timeout: float = 60.0) -> Completed:
        """Run to completion; with ``check``, a non-zero exit fails with kubectl's output."""
        process = await asyncio.create_subprocess_exec(
            *self._argv(args),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.env,
        )
        try:
            out, err = await asyncio.wait_for(
                process.communicate(stdin.encode() if stdin is not None else None), timeout
            )
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"kubectl {' '.join(args)} did not finish in {timeout}s") from None
        result = Completed(args, process.returncode or 0, out.decode(), err.decode())
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.output}")
        return result

    @contextlib.asynccontextmanager
    async def start(self, *args: str) -> AsyncIterator[Running]:
        """Start a long-running command; it is killed on exit if still running."""
        process = await asyncio.create_subprocess_exec(
            *self._argv(args),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
        )
        running = Running(process)
        try:
            yield running
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


class Running:
    """A running kubectl whose merged stdout/stderr is read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def read_until(self, text: str, *, timeout: float = 30.0) -> str:
        """Read lines until one contains ``text``; return it (AssertionError on timeout/EOF)."""
        for line in self.lines:
            if text in line:
                return line
        deadline = time.monotonic() + timeout
        assert self.process.stdout is not None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), remaining)
            except TimeoutError:
                break
            if not raw:
                break
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if text in line:
                return line
        raise AssertionError(f"kubectl never printed {text!r}; output so far:\n"
                             + "\n".join(self.lines))

    async def finish(self, *, timeout: float = 30.0) -> int:
        """Wait for the exit (reading the rest of the output); return the exit code."""
        assert self.process.stdout is not None
        rest = await asyncio.wait_for(self.process.stdout.read(), timeout)
        self.lines.extend(rest.decode().splitlines())
        return await asyncio.wait_for(self.process.wait(), timeout)
