"""The README's first command: ``conveyor dev --apply examples/ --wait``, as a process; and
``conveyor dev`` left running: one per work directory, and it survives its operator dying."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from conveyor_sandbox import services
from conveyor_sandbox.apply import Applier, manifests
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
FINAL = frozenset({"Succeeded", "Failed", "Cancelled"})


async def run_dev(args: list[str], env: dict[str, str], timeout: float = 240) -> tuple[int, str]:
    conveyor = shutil.which("conveyor", path=str(Path(sys.executable).parent))
    assert conveyor, "the conveyor console script is not installed in this environment"
    proc = await asyncio.create_subprocess_exec(
        conveyor, "dev", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode()


async def test_dev_applies_the_examples_waits_and_exits_zero(
    redis_url: str, postgres_server_url: str, tmp_path: Path
) -> None:
    async with services.fresh_database(postgres_server_url, "conveyor_dev") as database:
        code, out = await run_dev(
            ["--apply", str(ROOT / "examples"), "--wait", "--workdir", str(tmp_path)],
            {"CONVEYOR_REDIS_URL": redis_url, "CONVEYOR_DATABASE_URL": database})
    assert code == 0, out
    for name in ("data-pipeline-example", "fan-out-fan-in-example", "retry-recovers-example",
                 "publish-slideshow-example"):
        assert name in out
    assert out.count("Succeeded") >= 3 and "all Executions Succeeded" in out
    assert (tmp_path / "kubeconfig").exists()


async def test_dev_exits_non_zero_when_an_execution_fails(
    redis_url: str, postgres_server_url: str, tmp_path: Path
) -> None:
    manifest = tmp_path / "failing.yaml"
    manifest.write_text(
        "apiVersion: conveyor.dev/v1alpha1\nkind: Workflow\nmetadata: {name: doomed}\n"
        "spec:\n  tasks:\n    - {name: call, type: http, params: "
        "{url: 'http://httpbin.conveyor.test/status/404'}}\n---\n"
        "apiVersion: conveyor.dev/v1alpha1\nkind: Execution\nmetadata: {name: doomed-run}\n"
        "spec: {workflowRef: {name: doomed}}\n")
    async with services.fresh_database(postgres_server_url, "conveyor_dev") as database:
        code, out = await run_dev(
            ["--apply", str(manifest), "--wait", "--workdir", str(tmp_path / "work")],
            {"CONVEYOR_REDIS_URL": redis_url, "CONVEYOR_DATABASE_URL": database})
    assert code == 1, out
    assert "Failed" in out and "HTTP 404" in out and "some Executions did not succeed" in out


class Dev:
    """A ``conveyor dev`` process left running; its output is collected as it comes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(line.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    async def shows(self, text: str, timeout: float = 120) -> str:
        """Wait until ``text`` is in the output (failing early if the process ended)."""

        async def probe() -> str | None:
            if text in self.output:
                return self.output
            assert self.proc.returncode is None, f"conveyor dev exited:\n{self.output}"
            return None

        return await eventually(probe, timeout=timeout, interval=0.1,
                                what=f"{text!r} in the output of conveyor dev")

    async def exited(self, timeout: float = 120) -> int:
        await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return self.proc.returncode  # type: ignore[return-value]


@contextlib.asynccontextmanager
async def running_dev(args: list[str], env: dict[str, str]) -> AsyncIterator[Dev]:
    """``conveyor dev <args>`` in the background; stopped with SIGINT (Ctrl-C) at the end."""
    conveyor = shutil.which("conveyor", path=str(Path(sys.executable).parent))
    assert conveyor, "the conveyor console script is not installed in this environment"
    proc = await asyncio.create_subprocess_exec(
        conveyor, "dev", *args, env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL)
    dev = Dev(proc)
    try:
        yield dev
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await dev.exited(timeout=90)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        print(f"--- conveyor dev {' '.join(args)}\n{dev.output}")


def operator_pid(parent: int) -> int:
    """The pid of the ``python -m conveyor_operator run`` child of ``parent`` (from /proc)."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to find the operator process")
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
            if ppid == parent and cmdline[-3:-1] == [b"conveyor_operator", b"run"]:
                found.append(int(stat.parent.name))
    assert len(found) == 1, found
    return found[0]


def api_url(output: str) -> str:
    found = re.search(r"API server: (http://127\.0\.0\.1:\d+)", output)
    assert found, output
    return found.group(1)


async def test_a_second_dev_in_the_same_workdir_refuses_and_leaves_the_first_alone(
    redis_url: str, postgres_server_url: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    async with services.fresh_database(postgres_server_url, "conveyor_dev") as database:
        env = {"CONVEYOR_REDIS_URL": redis_url, "CONVEYOR_DATABASE_URL": database}
        async with running_dev(["--workdir", str(workdir)], env) as first:
            await first.shows("Sandbox running")
            kubeconfig = (workdir / "kubeconfig").read_text()
            logs = sorted(p.name for p in workdir.glob("*.log"))

            async with running_dev(["--workdir", str(workdir)], env) as second:
                code = await second.exited(timeout=60)
            assert code == 1, second.output
            refusal = " ".join(second.output.split())  # as one line, however it was wrapped
            assert (f"another sandbox (pid {first.proc.pid}) is already running in "
                    f"{workdir.resolve()}") in refusal, refusal
            assert "--workdir" in refusal, refusal

            assert first.proc.returncode is None, first.output
            assert (workdir / "kubeconfig").read_text() == kubeconfig
            assert sorted(p.name for p in workdir.glob("*.log")) == logs
            async with aiohttp.ClientSession() as session:
                async with session.get(f"{api_url(first.output)}/apis/conveyor.dev/v1alpha1"
                                       f"/workerpools/default") as response:
                    assert response.status == 200
        assert await first.exited() == 0, first.output

        # The lock went with the first sandbox: the directory is free again.
        async with running_dev(["--workdir", str(workdir)], env) as third:
            await third.shows("Sandbox running")


async def test_dev_restarts_its_operator_when_it_dies_and_keeps_working(
    redis_url: str, postgres_server_url: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    async with services.fresh_database(postgres_server_url, "conveyor_dev") as database:
        env = {"CONVEYOR_REDIS_URL": redis_url, "CONVEYOR_DATABASE_URL": database}
        async with running_dev(["--workdir", str(workdir)], env) as dev:
            await dev.shows("Sandbox running")
            pid = operator_pid(dev.proc.pid)
            os.kill(pid, signal.SIGKILL)

            await dev.shows(f"sandbox: the operator (pid {pid}) exited with code -9 (SIGKILL); "
                            f"its log: {(workdir / 'operator-1.log').resolve()}; restarting it",
                            timeout=30)
            await dev.shows("sandbox: operator restarted")
            assert f"operator:   pid {pid} (restarted if it exits)" in dev.output  # the banner

            base = api_url(dev.output)
            async with aiohttp.ClientSession() as session:
                applier = Applier(session, base)
                for doc in manifests([ROOT / "examples" / "data-pipeline.yaml"]):
                    await applier.apply(doc[1])

                async def phase() -> str | None:
                    async with session.get(f"{base}/apis/conveyor.dev/v1alpha1/namespaces/"
                                           f"default/executions/data-pipeline-example") as got:
                        found = await got.json() if got.status == 200 else {}
                    return (found.get("status") or {}).get("phase")

                assert await eventually(phase, until=lambda p: p in FINAL, timeout=120,
                                        what="the Execution to finish") == "Succeeded"
        assert await dev.exited() == 0, dev.output
