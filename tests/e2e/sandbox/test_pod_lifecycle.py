"""End to end: the sandbox's kubelet behaves like a Deployment controller and a kubelet, and
the WorkerPool's ``Degraded`` condition names what its pods show.

Real processes throughout (the operator, the workers the kubelet emulation runs, kubectl):

* a deleted worker pod stops its process and the Deployment gets a replacement that serves;
* a WorkerPool ``env`` edit and ``kubectl rollout restart`` replace the pods one at a time
  (RollingUpdate, maxSurge 1, maxUnavailable 0): the Deployment never reports fewer ready
  workers than it wants, the new processes see the new env, and its status is true after;
* a worker that exits at start (``CONVEYOR_CONCURRENCY=0``: exit code 2 and one line) is
  restarted in the same pod with the crash-loop back-off (a short one, a sandbox setting),
  shows ``CrashLoopBackOff`` with ``restartCount`` and ``lastState``, and the pool is
  ``Degraded`` naming the pod and the error at once;
* a pool mounting a missing Secret is ``Degraded`` with ``CreateContainerConfigError``
  naming it, until ``kubectl create secret generic`` creates it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from conveyor_sandbox import services
from conveyor_sandbox.restarts import CrashLoopBackOff
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.e2e.kubectl import Kubectl
from tests.support.conditions import condition
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: Short enough for a test, long enough to tell from no back-off at all.
BACKOFF = CrashLoopBackOff(initial=1.0, cap=4.0)


@pytest_asyncio.fixture(scope="module")
async def lifecycle(redis_url: str, postgres_server_url: str,
                    tmp_path_factory: pytest.TempPathFactory
                    ) -> AsyncIterator[tuple[Sandbox, Kubectl]]:
    """A sandbox without a default worker whose operator looks at pools every second and
    would call workers that are merely not ready degraded only after 5 minutes."""
    workdir = tmp_path_factory.mktemp("lifecycle")
    async with services.fresh_database(postgres_server_url, "conveyor_lifecycle") as database:
        config = SandboxConfig(
            workdir=workdir, redis_url=redis_url, database_url=database, workers=0,
            crash_backoff=BACKOFF,
            operator_env={"CONVEYOR_POOL_CHECK_SECONDS": "1",
                          "CONVEYOR_POOL_DEGRADED_AFTER_SECONDS": "300"})
        async with Sandbox(config) as sandbox:
            yield sandbox, Kubectl(sandbox.kubeconfig, workdir / "kubectl-cache")


def pool_manifest(name: str, replicas: int, env: dict[str, str], extra: str = "") -> str:
    items = ", ".join(f"{{name: {k}, value: '{v}'}}" for k, v in env.items())
    return manifest(f"""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {{name: {name}}}
        spec: {{minReplicas: {replicas}, maxReplicas: {replicas}, shutdownGraceSeconds: 2,
                env: [{items}]{extra}}}
    """)


async def pods(sandbox: Sandbox, pool: str) -> list[dict[str, Any]]:
    return await sandbox.list_pods({"conveyor.dev/pool": pool})


def ready(pod: dict[str, Any]) -> bool:
    return condition(pod.get("status"), "Ready").get("status") == "True"


def container(pod: dict[str, Any]) -> dict[str, Any]:
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


def process_of(sandbox: Sandbox, pod: str) -> Any:
    assert sandbox.kubelet is not None
    return next(p for p in sandbox.kubelet.processes if p.name == pod)


async def degraded(sandbox: Sandbox, pool: str) -> dict[str, Any]:
    return condition(((await sandbox.get_cluster("workerpools", pool)) or {}).get("status"),
                     "Degraded")


async def all_ready(sandbox: Sandbox, pool: str, count: int) -> list[dict[str, Any]]:
    return await eventually(lambda: pods(sandbox, pool),
                            until=lambda ps: len(ps) == count and all(map(ready, ps)),
                            timeout=60, interval=0.1, what=f"{count} ready pods of {pool}")


@contextlib.asynccontextmanager
async def watching(sandbox: Sandbox, pool: str) -> AsyncIterator[list[dict[str, Any]]]:
    """Samples of the pool's Deployment status every 50 ms while the block runs."""
    seen: list[dict[str, Any]] = []

    async def sample() -> None:
        while True:
            found = await sandbox.deployment(pool) or {}
            seen.append(found.get("status") or {})
            await asyncio.sleep(0.05)

    task = asyncio.create_task(sample())
    try:
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def rolled_out(sandbox: Sandbox, pool: str, replicas: int,
                     old: set[str]) -> list[dict[str, Any]]:
    """Wait until the pool runs ``replicas`` ready pods, none of the ``old`` templates, and
    its Deployment says the rollout is complete; its pods then."""
    async def look() -> tuple[list[dict[str, Any]], dict[str, Any]]:
        return await pods(sandbox, pool), await sandbox.deployment(pool) or {}

    def done(seen: tuple[list[dict[str, Any]], dict[str, Any]]) -> bool:
        found, deployment = seen
        status = deployment.get("status") or {}
        return (len(found) == replicas and all(map(ready, found))
                and not {p["metadata"]["labels"]["pod-template-hash"] for p in found} & old
                and status.get("updatedReplicas") == status.get("replicas") == replicas
                and status.get("readyReplicas") == replicas
                and status.get("observedGeneration") == deployment["metadata"]["generation"])

    found, _ = await eventually(look, until=done, timeout=120, interval=0.1,
                                what=f"{pool} rolled out")
    return found


def hashes(found: list[dict[str, Any]]) -> set[str]:
    return {p["metadata"]["labels"]["pod-template-hash"] for p in found}


async def test_deleted_pods_are_replaced_and_template_changes_roll_out_one_at_a_time(
    lifecycle: tuple[Sandbox, Kubectl],
) -> None:
    sandbox, kubectl = lifecycle
    await kubectl.run("apply", "-f", "-",
                      stdin=pool_manifest("rolling", 2, {"CONVEYOR_CONCURRENCY": "3"}))
    first = await all_ready(sandbox, "rolling", 2)
    victim = first[0]["metadata"]["name"]
    process = process_of(sandbox, victim)

    # kubectl delete pod: the process stops and a new pod serves in its place.
    await kubectl.run("delete", "pod", victim)
    await eventually(lambda: asyncio.sleep(0, process.proc.poll()),
                     until=lambda code: code is not None, timeout=30,
                     what="the deleted pod's process to stop")
    replaced = await all_ready(sandbox, "rolling", 2)
    assert victim not in {p["metadata"]["name"] for p in replaced}

    # An env edit rolls out one pod at a time; the new processes see the new env.
    old = hashes(replaced)
    async with watching(sandbox, "rolling") as seen:
        await kubectl.run("patch", "workerpool", "rolling", "--type", "merge", "-p",
                          '{"spec": {"env": [{"name": "CONVEYOR_CONCURRENCY", '
                          '"value": "5"}]}}')
        rolled = await rolled_out(sandbox, "rolling", 2, old)
    for pod in rolled:
        log = process_of(sandbox, pod["metadata"]["name"]).log()
        assert "with 5 slots" in log, log
    assert min(s.get("readyReplicas", 0) for s in seen) >= 2, seen  # maxUnavailable 0
    assert max(s.get("replicas", 0) for s in seen) == 3, seen  # maxSurge 1: one at a time

    # kubectl rollout restart: the same, and kubectl rollout status agrees.
    old = hashes(rolled)
    async with watching(sandbox, "rolling") as seen:
        await kubectl.run("rollout", "restart", "deployment/conveyor-worker-rolling")
        await rolled_out(sandbox, "rolling", 2, old)
    assert min(s.get("readyReplicas", 0) for s in seen) >= 2, seen
    status = await kubectl.run("rollout", "status", "deployment/conveyor-worker-rolling",
                               "--timeout=30s")
    assert "successfully rolled out" in status.output, status.output
    await kubectl.run("delete", "workerpool", "rolling")


async def test_a_crash_looping_worker_backs_off_in_its_pod_and_the_pool_says_why(
    lifecycle: tuple[Sandbox, Kubectl],
) -> None:
    sandbox, kubectl = lifecycle
    await kubectl.run("apply", "-f", "-",
                      stdin=pool_manifest("broken", 1, {"CONVEYOR_CONCURRENCY": "0"}))
    cause = await eventually(lambda: degraded(sandbox, "broken"),
                             until=lambda c: c.get("reason") == "CrashLoopBackOff",
                             timeout=60, interval=0.2, what="Degraded to say CrashLoopBackOff")
    (pod,) = await pods(sandbox, "broken")
    name = pod["metadata"]["name"]
    assert cause["status"] == "True", cause
    assert cause["message"] == (f"pod {name}: exit code 2: CONVEYOR_CONCURRENCY: Input should "
                                f"be greater than or equal to 1 (got '0')"), cause

    once = await eventually(lambda: pods(sandbox, "broken"),
                            until=lambda ps: container(ps[0]).get("restartCount", 0) >= 1,
                            timeout=30, interval=0.05, what="a first restart")
    # The back-off doubles (1 s, 2 s, 4 s): the kubelet's waiting message says the delay of
    # the restart ahead, read here rather than timed (a loaded machine stretches timings).
    backing_off = await eventually(
        lambda: pods(sandbox, "broken"),
        until=lambda ps: "back-off 4s restarting failed container" in (
            container(ps[0]).get("state", {}).get("waiting", {}).get("message", "")),
        timeout=60, interval=0.05, what="the third back-off of 4 s")
    again = await eventually(lambda: pods(sandbox, "broken"),
                             until=lambda ps: container(ps[0]).get("restartCount", 0) >= 3,
                             timeout=60, interval=0.05, what="two more restarts")
    # The same pod throughout, restarted in place.
    assert [p["metadata"]["name"] for p in [*once, *backing_off, *again]] == [name] * 3
    assert len(list(sandbox.config.workdir.glob("conveyor-worker-broken-*.log"))) == 1
    status = container(again[0])
    terminated = status["lastState"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (2, "Error"), status
    assert "CONVEYOR_CONCURRENCY" in terminated["message"], status
    shown = await eventually(
        lambda: kubectl.run("get", "pods", "-l", "conveyor.dev/pool=broken"),
        until=lambda r: "CrashLoopBackOff" in r.output, timeout=30, interval=0.1,
        what="kubectl get pods to show CrashLoopBackOff")
    assert "0/1" in shown.output, shown.output
    await kubectl.run("delete", "workerpool", "broken")


async def test_a_missing_secret_degrades_the_pool_until_it_is_created(
    lifecycle: tuple[Sandbox, Kubectl],
) -> None:
    sandbox, kubectl = lifecycle
    await kubectl.run("apply", "-f", "-", stdin=pool_manifest(
        "needs-secret", 1, {}, extra=", secrets: [{name: paymnets}]"))
    cause = await eventually(
        lambda: degraded(sandbox, "needs-secret"),
        until=lambda c: c.get("reason") == "CreateContainerConfigError",
        timeout=60, interval=0.2, what="Degraded to say CreateContainerConfigError")
    (pod,) = await pods(sandbox, "needs-secret")
    assert cause["message"] == f'pod {pod["metadata"]["name"]}: secret "paymnets" not found'
    shown = await kubectl.run("get", "pods", "-l", "conveyor.dev/pool=needs-secret")
    assert "CreateContainerConfigError" in shown.output, shown.output

    await kubectl.run("create", "secret", "generic", "paymnets", "--from-literal=token=t")
    await eventually(lambda: degraded(sandbox, "needs-secret"),
                     until=lambda c: (c.get("status"), c.get("reason"))
                     == ("False", "AllWorkersReady"),
                     timeout=60, interval=0.2, what="Degraded to clear")
    await kubectl.run("delete", "workerpool", "needs-secret")
