"""The sandbox notices when its operator dies, says so, and restarts it (within a bound).

Each test runs its own sandbox (the session's shared one stays untouched): the operator is
killed from outside, as a crash or an OOM kill would, and the sandbox must keep working.
A deliberate :meth:`Sandbox.stop_operator` is not a crash and must not be undone.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from conveyor_sandbox import services
from conveyor_sandbox.processes import ProcessFailed, RestartBudget
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.manifests import print_logs
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("crashes", "expected"),
    [
        ([0.0], [0.0]),                                  # first crash: restart at once
        ([0, 1, 2, 3], [0.0, 0.5, 1.0, 2.0]),            # then back off, doubling
        ([0, 1, 2, 3, 4, 5], [0.0, 0.5, 1.0, 2.0, 4.0, None]),  # limit 5: the 6th gives up
        ([0, 61, 122, 183, 244, 305, 366], [0.0] * 7),   # far apart: never adds up
        ([0, 1, 2, 70], [0.0, 0.5, 1.0, 0.0]),           # old crashes are forgotten
    ],
)
def test_restart_budget(crashes: list[float], expected: list[float | None]) -> None:
    budget = RestartBudget(limit=5, window=60.0, max_delay=5.0)
    assert [budget.crashed(float(t)) for t in crashes] == expected


def test_restart_budget_caps_the_delay() -> None:
    budget = RestartBudget(limit=100, window=60.0, max_delay=5.0)
    assert [budget.crashed(t / 10) for t in range(8)][-1] == 5.0


@asynccontextmanager
async def own_sandbox(redis_url: str, postgres_server_url: str, workdir: Path,
                      **config: object) -> AsyncIterator[tuple[Sandbox, list[str]]]:
    reports: list[str] = []
    async with services.fresh_database(postgres_server_url, "conveyor_watchdog") as db:
        cfg = SandboxConfig(workdir=workdir, redis_url=redis_url, database_url=db,
                            **config)  # type: ignore[arg-type]
        try:
            async with Sandbox(cfg, report=reports.append) as sandbox:
                yield sandbox, reports
        finally:
            print_logs(workdir)
            print("--- reports\n" + "\n".join(reports))


def workflow(name: str) -> list[dict]:
    return [
        {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Workflow", "metadata": {"name": name},
         "spec": {"tasks": [{"name": "a", "type": "set", "params": {"v": 1}},
                            {"name": "b", "type": "set", "dependsOn": ["a"],
                             "params": {"v": 2}}]}},
        {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Execution",
         "metadata": {"name": f"{name}-run"}, "spec": {"workflowRef": {"name": name}}},
    ]


async def runs(sandbox: Sandbox, name: str) -> None:
    """A new Execution applied now gets status and succeeds: the operator works."""
    await sandbox.apply_objects(workflow(name))
    done = await sandbox.wait_finished([("default", f"{name}-run")], timeout=60)
    assert done[0]["status"]["phase"] == "Succeeded", done


def reported(reports: list[str], *parts: str) -> Callable[[], object]:
    async def probe() -> list[str]:
        return [r for r in reports if all(p in r for p in parts)]
    return probe


@pytest.mark.parametrize(("sig", "described"), [(signal.SIGKILL, "code -9 (SIGKILL)"),
                                                (signal.SIGTERM, "exited with code")])
async def test_an_operator_killed_from_outside_is_reported_and_restarted(
    redis_url: str, postgres_server_url: str, tmp_path: Path, sig: signal.Signals,
    described: str
) -> None:
    async with own_sandbox(redis_url, postgres_server_url, tmp_path) as (sandbox, reports):
        first = sandbox.operator
        assert first is not None
        os.kill(first.proc.pid, sig)

        await eventually(reported(reports, f"operator (pid {first.proc.pid}) exited",
                                  described, str(first.log_path.resolve()), "restarting"),
                         timeout=10, what="the crash to be reported")
        await eventually(reported(reports, "operator restarted"), timeout=60,
                         what="the operator to be restarted")
        assert sandbox.operator is not first and sandbox.operator.proc.poll() is None
        assert sandbox.operator.log_path != first.log_path  # the new one logs afresh
        assert sandbox.operator_restarts == 1 and sandbox.failure is None
        await runs(sandbox, "after-crash")


async def test_a_deliberate_stop_is_not_undone(
    redis_url: str, postgres_server_url: str, tmp_path: Path
) -> None:
    async with own_sandbox(redis_url, postgres_server_url, tmp_path) as (sandbox, reports):
        stopped = sandbox.operator
        assert stopped is not None
        await sandbox.stop_operator()
        looks = sandbox.watchdog_passes
        await eventually(lambda: _value(sandbox.watchdog_passes), until=lambda n: n >= looks + 10,
                         timeout=30, what="the watchdog to look ten more times")
        assert sandbox.operator is stopped and stopped.proc.poll() is not None
        assert sandbox.operator_restarts == 0 and reports == []
        with pytest.raises(ProcessFailed, match="operator exited"):
            sandbox.check_failed()  # waiting for Executions now fails fast

        await sandbox.stop_operator(kill=True)  # stopping a stopped operator is harmless
        await sandbox.start_operator()
        await runs(sandbox, "after-stop")
        assert sandbox.operator_restarts == 0 and reports == []


async def test_an_operator_that_keeps_crashing_makes_the_sandbox_give_up(
    redis_url: str, postgres_server_url: str, tmp_path: Path
) -> None:
    async with own_sandbox(redis_url, postgres_server_url, tmp_path,
                           operator_restarts=1) as (sandbox, reports):
        first = sandbox.operator
        assert first is not None
        first.kill()
        await eventually(reported(reports, "operator restarted"), timeout=60,
                         what="the first restart")
        second = sandbox.operator
        assert second is not None and second is not first
        second.kill()
        await eventually(lambda: _value(sandbox.failed.is_set()), timeout=10,
                         what="the sandbox to give up")
        assert sandbox.operator is second and sandbox.operator_restarts == 1
        assert any("keeps crashing, giving up" in r for r in reports), reports
        assert sandbox.failure is not None
        assert f"its log: {second.log_path.resolve()}" in str(sandbox.failure)
        with pytest.raises(ProcessFailed, match="giving up"):
            await sandbox.wait_finished([("default", "nothing")], timeout=5)


async def _value(value: object) -> object:
    return value
