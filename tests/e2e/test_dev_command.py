"""The README's first command: ``conveyor dev --apply examples/ --wait``, as a process."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from conveyor_engine import localservices

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


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
    async with localservices.fresh_database(postgres_server_url, "conveyor_dev") as database:
        code, out = await run_dev(
            ["--apply", str(ROOT / "examples"), "--wait", "--workdir", str(tmp_path)],
            {"CONVEYOR_REDIS_URL": redis_url, "CONVEYOR_DATABASE_URL": database})
    assert code == 0, out
    for name in ("data-pipeline-example", "fan-out-fan-in-example", "retry-recovers-example"):
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
    async with localservices.fresh_database(postgres_server_url, "conveyor_dev") as database:
        code, out = await run_dev(
            ["--apply", str(manifest), "--wait", "--workdir", str(tmp_path / "work")],
            {"CONVEYOR_REDIS_URL": redis_url, "CONVEYOR_DATABASE_URL": database})
    assert code == 1, out
    assert "Failed" in out and "HTTP 404" in out and "some Executions did not succeed" in out
