"""End to end: a WorkerPool whose workers cannot reach their Redis says so on its status.

Real processes throughout: the operator, the pool's worker (a process run by the sandbox's
kubelet, which sends the Deployment's readiness probe to the worker's ``/readyz``) and a
private ``redis-server`` that is killed and started again on the same port.

In the first test only the pool's worker uses the private Redis (its own env entry); the
operator reads the pool's queue on the sandbox's Redis, so its own view stays healthy and
what turns the pool ``Degraded`` is the workers' readiness alone, as the Deployment reports
it. In the second the pool names the private Redis in ``spec.redis`` (the operator reads it
too), so the operator's own view shows first.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from conveyor_sandbox import services
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.conditions import condition
from tests.support.polling import eventually
from tests.support.private_redis import PrivateRedis

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server not on PATH")]

POOL = "fragile"


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.close()


def pool(*, worker_redis: str | None = None, secret: str | None = None) -> dict[str, Any]:
    """One worker, quick to notice an outage and a recovery, whose Redis is
    ``worker_redis`` (its own env entry replaces the operator's) or the one in ``secret``
    (``spec.redis``, which the operator reads too)."""
    env = {"CONVEYOR_REDIS_TIMEOUT_SECONDS": "2", "CONVEYOR_DEPENDENCY_CHECK_SECONDS": "0.5"}
    if worker_redis:
        env["CONVEYOR_REDIS_URL"] = worker_redis
    spec: dict[str, Any] = {"minReplicas": 1, "maxReplicas": 1, "shutdownGraceSeconds": 2,
                            "env": [{"name": k, "value": v} for k, v in env.items()]}
    if secret:
        spec["redis"] = {"urlSecretRef": {"name": secret, "key": "url"}}
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": "WorkerPool",
            "metadata": {"name": POOL}, "spec": spec}


@contextlib.asynccontextmanager
async def running_sandbox(redis_url: str, postgres_server_url: str,
                          workdir: Path) -> AsyncIterator[Sandbox]:
    """A sandbox without a default worker whose operator looks at pools every second and
    calls a pool degraded after 2 s of workers not ready."""
    async with services.fresh_database(postgres_server_url, "conveyor_degraded") as database:
        config = SandboxConfig(
            workdir=workdir, redis_url=redis_url, database_url=database,
            workers=0, operator_env={"CONVEYOR_POOL_CHECK_SECONDS": "1",
                                     "CONVEYOR_POOL_DEGRADED_AFTER_SECONDS": "2"})
        async with Sandbox(config) as sandbox:
            yield sandbox


async def observed(sandbox: Sandbox) -> dict[str, Any]:
    """What the test looks at: the pool's Ready and Degraded conditions and the ready
    replicas of its Deployment."""
    found = await sandbox.get_cluster("workerpools", POOL)
    status = (found or {}).get("status")
    deployment = await sandbox.deployment(POOL) or {}
    return {"ready": condition(status, "Ready"), "degraded": condition(status, "Degraded"),
            "readyReplicas": deployment.get("status", {}).get("readyReplicas")}


def degraded(seen: dict[str, Any]) -> tuple[Any, Any]:
    return seen["degraded"].get("status"), seen["degraded"].get("reason")


def status_writes(sandbox: Sandbox, since: int) -> int:
    """Writes to the pool's status since request number ``since`` of the API server."""
    return sum(1 for r in sandbox.api.requests[since:]
               if r.verb in {"update", "patch"} and r.resource == "workerpools"
               and r.name == POOL and r.subresource == "status")


async def status_writes_stopped(sandbox: Sandbox) -> bool:
    """True once the pool's status was not written for 3 s (the operator looks at the pool
    every second in this test, so a status rewritten on every look never gets there)."""
    mark = len(sandbox.api.requests)
    await asyncio.sleep(3.0)
    return status_writes(sandbox, mark) == 0


async def healthy(sandbox: Sandbox) -> dict[str, Any]:
    """Wait until the pool's worker is ready and the pool says so."""
    seen = await eventually(
        lambda: observed(sandbox),
        until=lambda s: s["readyReplicas"] == 1 and s["ready"].get("status") == "True"
        and degraded(s) == ("False", "AllWorkersReady"),
        timeout=60, interval=0.2, what="the pool's worker to be ready")
    assert seen["degraded"]["message"] == "all 1 worker(s) ready", seen
    return seen


async def test_a_pool_whose_workers_lose_their_redis_turns_degraded_and_back(
    redis_url: str, postgres_server_url: str, private_redis: PrivateRedis, tmp_path: Path,
) -> None:
    async with running_sandbox(redis_url, postgres_server_url, tmp_path / "sb") as sandbox:
        await sandbox.apply_objects([pool(worker_redis=private_redis.url)])
        await healthy(sandbox)

        mark = len(sandbox.api.requests)
        private_redis.kill()
        down = await eventually(
            lambda: observed(sandbox),
            until=lambda s: degraded(s) == ("True", "WorkersNotReady"),
            timeout=90, interval=0.2, what="the pool to say its workers are degraded")
        assert down["readyReplicas"] == 0, down
        assert "1 of 1 worker(s) not ready" in down["degraded"]["message"], down
        # The pool itself is still there and will resume: Ready stays True.
        assert (down["ready"]["status"], down["ready"]["reason"]) == ("True", "Active")
        assert status_writes(sandbox, mark) >= 1  # the change itself was written
        # While the outage lasts and nothing else changes, nothing more is written.
        await eventually(lambda: status_writes_stopped(sandbox), timeout=20,
                         what="status writes to stop while the pool stays degraded")
        # A run queued on the pool meanwhile says that no worker of it is ready.
        await sandbox.apply_objects([
            {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Workflow",
             "metadata": {"name": "on-fragile"},
             "spec": {"pool": POOL, "tasks": [{"name": "one", "type": "set"}]}},
            {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Execution",
             "metadata": {"name": "waits-for-a-worker"},
             "spec": {"workflowRef": {"name": "on-fragile"}}}])
        waiting = await eventually(
            lambda: sandbox.get("executions", "waits-for-a-worker"),
            until=lambda e: condition((e or {}).get("status"), "Ready").get("reason")
            == "NoWorkers", timeout=60, interval=0.2, what="the run to say NoWorkers")
        assert f"no worker of WorkerPool '{POOL}' is ready" in waiting["status"]["message"]

        private_redis.start()
        back = await eventually(
            lambda: observed(sandbox),
            until=lambda s: degraded(s) == ("False", "AllWorkersReady"),
            timeout=90, interval=0.2, what="the pool to say its workers are ready again")
        assert back["readyReplicas"] == 1, back
        assert back["ready"]["status"] == "True", back
        await eventually(
            lambda: sandbox.get("executions", "waits-for-a-worker"),
            until=lambda e: condition((e or {}).get("status"), "Ready").get("reason")
            != "NoWorkers", timeout=60, interval=0.2, what="NoWorkers to go")


async def test_when_the_operator_cannot_reach_the_pools_redis_either_both_views_show(
    redis_url: str, postgres_server_url: str, private_redis: PrivateRedis, tmp_path: Path,
) -> None:
    async with running_sandbox(redis_url, postgres_server_url, tmp_path / "sb") as sandbox:
        url = base64.b64encode(private_redis.url.encode()).decode()
        await sandbox.apply_objects([
            {"apiVersion": "v1", "kind": "Secret",
             "metadata": {"name": "fragile-redis", "namespace": sandbox.config.namespace},
             "data": {"url": url}},
            pool(secret="fragile-redis")])
        await healthy(sandbox)

        private_redis.kill()
        # The operator's own look fails at once: its view shows first, on both conditions.
        first = await eventually(
            lambda: observed(sandbox),
            until=lambda s: degraded(s) == ("True", "RedisUnavailable"),
            timeout=30, interval=0.1, what="Degraded to show the operator's view")
        assert first["degraded"]["message"].startswith(
            "the operator cannot reach the pool's Redis"), first
        # Then the worker's readiness probe fails too, and the workers' count leads.
        down = await eventually(
            lambda: observed(sandbox),
            until=lambda s: degraded(s) == ("True", "WorkersNotReady"),
            timeout=90, interval=0.2, what="the pool to say its workers are degraded")
        assert "; the operator also cannot reach the pool's Redis" in down["degraded"][
            "message"], down
        assert (down["ready"]["status"], down["ready"]["reason"]) == (
            "False", "RedisUnavailable"), down

        private_redis.start()
        back = await eventually(
            lambda: observed(sandbox),
            until=lambda s: degraded(s) == ("False", "AllWorkersReady")
            and s["ready"].get("status") == "True",
            timeout=90, interval=0.2, what="the pool to be Ready and not Degraded again")
        assert back["readyReplicas"] == 1, back
