"""Worker pools scaled by queue depth, end to end in the sandbox.

The sandbox's operator re-checks pools on its own only every 60 s (see conftest.py), so a
pool that scales within the deadlines below does so because the engine's change stream
pushed the news: the reaction time itself is measured by bench/scaling.py, not asserted.
"""

from __future__ import annotations

import asyncio
import base64

import aiohttp
import pytest
import yaml

from conveyor_engine.api import Engine
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.conditions import ready_condition
from tests.support.manifests import CRDS, manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


async def replicas(sandbox: Sandbox, pool: str) -> int | None:
    found = await sandbox.deployment(pool)
    return None if found is None else found["spec"]["replicas"]


async def pool_status(sandbox: Sandbox, pool: str) -> dict:
    found = await sandbox.get_cluster("workerpools", pool)
    return (found or {}).get("status", {})


async def deployment_in(sandbox: Sandbox, namespace: str, pool: str) -> dict | None:
    """The worker Deployment of ``pool`` in ``namespace`` (``sandbox.deployment`` looks only
    in the sandbox's own namespace), or None."""
    url = (f"{sandbox.api.url}/apis/apps/v1/namespaces/{namespace}/deployments/"
           f"conveyor-worker-{pool}")
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        return await response.json() if response.status == 200 else None


async def generation(sandbox: Sandbox, pool: str) -> int:
    return (await sandbox.get_cluster("workerpools", pool))["metadata"]["generation"]


async def test_burst_scales_up_then_down_after_the_window_and_to_zero(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    tasks = ", ".join(f"{{name: t{i}, type: set, params: {{i: {i}}}}}" for i in range(200))
    await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {{name: burst}}
        spec: {{minReplicas: 0, maxReplicas: 3, concurrency: 16, targetPerReplica: 50,
                scaleDownStabilizationSeconds: 3, shutdownGraceSeconds: 5}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {{name: burst}}
        spec: {{pool: burst, tasks: [{tasks}]}}
    """))
    await eventually(lambda: replicas(sandbox, "burst"), until=lambda n: n == 0,
                     what="the burst pool's Deployment at zero")
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: burst-run}
        spec: {workflowRef: {name: burst}}
    """))
    await eventually(lambda: replicas(sandbox, "burst"), until=lambda n: n == 3, timeout=10,
                     interval=0.05, what="the pool to scale up for 200 queued tasks")
    done = await sandbox.wait_finished([("default", "burst-run")], timeout=120)
    assert done[0]["status"]["phase"] == "Succeeded"
    assert done[0]["status"]["progress"] == "200/200"

    await eventually(lambda: replicas(sandbox, "burst"), until=lambda n: n == 0, timeout=30,
                     what="the pool to scale back to zero after its window")
    status = await eventually(lambda: pool_status(sandbox, "burst"),
                              until=lambda s: s.get("currentReplicas") == 0,
                              what="the pool's status to show zero replicas")
    assert status["queued"] == 0
    assert "scale" in status["lastScaleReason"] and "-> 0" in status["lastScaleReason"]
    events = (await kubectl.run("get", "events", "-n", "default", "--field-selector",
                                "involvedObject.name=burst,involvedObject.kind=WorkerPool")).stdout
    assert "ScaledUp" in events and "ScaledDown" in events
    table = (await kubectl.run("get", "workerpools", "burst")).stdout
    assert table.split("\n")[0].split() == [
        "NAME", "QUEUED", "IN-FLIGHT", "DESIRED", "CURRENT", "READY", "AGE"]


async def test_long_task_keeps_a_worker_until_it_finishes_then_the_pool_sleeps(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: steady}
        spec: {minReplicas: 0, maxReplicas: 2, concurrency: 4,
               scaleDownStabilizationSeconds: 1, shutdownGraceSeconds: 5}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: long-call}
        spec:
          pool: steady
          tasks:
            - {name: slow, type: http, params: {url: "http://httpbin.conveyor.test/delay/8"},
               timeout: 30s}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: long-call-run}
        spec: {workflowRef: {name: long-call}}
    """))
    started = await eventually(
        lambda: sandbox.get("executions", "long-call-run"),
        until=lambda e: e and e.get("status", {}).get("phase") == "Running",
        timeout=30, what="the long task to start")
    execution_id = started["status"]["executionId"]

    async def task_phase() -> str:
        return (await sandbox_engine.get(execution_id)).task("slow").phase

    seen: list[int | None] = []
    # Well past the 1 s scale-down window, with the queue empty, while the call runs
    # (asked of PostgreSQL, the truth; the resource's status trails it a little):
    while await task_phase() in ("Ready", "Running"):
        seen.append(await replicas(sandbox, "steady"))
        await asyncio.sleep(0.2)
    assert len(seen) > 10 and min(n or 0 for n in seen) >= 1, seen
    assert await task_phase() == "Succeeded"
    await eventually(lambda: replicas(sandbox, "steady"), until=lambda n: n == 0, timeout=30,
                     what="the pool to sleep once the task is done")


async def test_busy_pod_is_marked_costly_to_delete(sandbox: Sandbox, kubectl: Kubectl) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: guarded}
        spec: {minReplicas: 1, maxReplicas: 1, concurrency: 4}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: guarded-call}
        spec:
          pool: guarded
          tasks:
            - {name: slow, type: http, params: {url: "http://httpbin.conveyor.test/delay/5"}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: guarded-run}
        spec: {workflowRef: {name: guarded-call}}
    """))

    async def costs() -> dict[str, str]:
        pods = await sandbox.list_pods({"conveyor.dev/pool": "guarded"})
        return {p["metadata"]["name"]: (p["metadata"].get("annotations") or {}).get(
            "controller.kubernetes.io/pod-deletion-cost") for p in pods}

    busy = await eventually(costs, until=lambda c: "1" in c.values(), timeout=30,
                            what="the busy pod's deletion cost")
    assert list(busy.values()) == ["1"]
    await sandbox.wait_finished([("default", "guarded-run")], timeout=60)
    await eventually(costs, until=lambda c: list(c.values()) == ["0"], timeout=30,
                     what="the cost to drop once the task is done")


async def test_pool_whose_redis_is_unreachable_says_so_and_keeps_its_size(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    from conveyor_sandbox.services import find_free_port

    url = base64.b64encode(f"redis://127.0.0.1:{find_free_port()}/0".encode()).decode()
    await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
        apiVersion: v1
        kind: Secret
        metadata: {{name: nowhere-redis, namespace: default}}
        data: {{url: {url}}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {{name: cut-off}}
        spec:
          minReplicas: 0
          maxReplicas: 2
          redis: {{urlSecretRef: {{name: nowhere-redis, key: url}}}}
    """))
    status = await eventually(lambda: pool_status(sandbox, "cut-off"),
                              until=lambda s: any(c.get("reason") == "RedisUnavailable"
                                                  for c in s.get("conditions", [])),
                              timeout=90, what="the RedisUnavailable condition")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["status"] == "False" and "keeping 0 replica(s)" in ready["message"]
    assert await replicas(sandbox, "cut-off") == 0


async def test_min_replicas_above_the_default_max_replicas_is_refused(kubectl: Kubectl) -> None:
    """The CRD rule counts the defaults (minReplicas 1, maxReplicas 10), so `kubectl apply`
    refuses what the operator could only report as InvalidSpec later."""
    def pool(spec: str) -> str:
        return manifest(f"""
            apiVersion: conveyor.dev/v1alpha1
            kind: WorkerPool
            metadata: {{name: bounds}}
            spec: {spec}
        """)

    for spec in ("{minReplicas: 11}", "{minReplicas: 3, maxReplicas: 2}"):
        refused = await kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=pool(spec),
                                    check=False)
        assert refused.returncode != 0, spec
        assert ("minReplicas must not exceed maxReplicas (defaults: minReplicas 1, "
                "maxReplicas 10)") in refused.stderr, refused.stderr
    for spec in ("{minReplicas: 11, maxReplicas: 11}", "{maxReplicas: 1}", "{minReplicas: 0}",
                 "{minReplicas: 10}"):
        await kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=pool(spec))
    found = await kubectl.run("get", "workerpool", "bounds", "--ignore-not-found")
    assert found.stdout == ""


WORKERPOOL_CRD = CRDS / "workerpools.conveyor.dev.yaml"


async def test_invalid_spec_keeps_the_deployment_and_status_reports_its_size(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    """An invalid spec changes nothing that runs: the Deployment keeps its 2 replicas and the
    status says 2, not 0. The CRD now refuses the spec used here (minReplicas above the
    default maxReplicas), so the test stands in for a cluster whose CRD predates that rule
    (or an API server without CEL rules) by dropping the CRD's spec rules meanwhile."""
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: shrinker}
        spec: {minReplicas: 2, maxReplicas: 3}
    """))
    await eventually(lambda: sandbox.ready_workers("shrinker", at_least=2), timeout=60,
                     what="two workers")
    lenient = yaml.safe_load(WORKERPOOL_CRD.read_text())
    lenient["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"].pop(
        "x-kubernetes-validations")
    await sandbox.apply_objects([lenient])
    try:
        await kubectl.run("patch", "workerpool", "shrinker", "--type=json", "-p",
                          '[{"op": "remove", "path": "/spec/maxReplicas"},'
                          ' {"op": "replace", "path": "/spec/minReplicas", "value": 11}]')
        invalid = await generation(sandbox, "shrinker")
        status = await eventually(
            lambda: pool_status(sandbox, "shrinker"),
            until=lambda s: ready_condition(s).get("reason") == "InvalidSpec"
            and s.get("observedGeneration") == invalid, what="InvalidSpec")
        assert ready_condition(status)["status"] == "False"
        assert "minReplicas must not exceed maxReplicas" in ready_condition(status)["message"]
        running = await sandbox.deployment("shrinker")
        assert running["spec"]["replicas"] == 2, "an invalid spec must not resize the pool"
        assert (status["currentReplicas"], status["readyReplicas"]) == (2, 2), status
        assert status["deployment"] == "default/conveyor-worker-shrinker"

        await kubectl.run("patch", "workerpool", "shrinker", "--type=merge",
                          "-p", '{"spec": {"minReplicas": 2, "maxReplicas": 3}}')
        valid = await generation(sandbox, "shrinker")
        status = await eventually(
            lambda: pool_status(sandbox, "shrinker"),
            until=lambda s: ready_condition(s).get("status") == "True"
            and s.get("observedGeneration") == valid, what="Ready again")
        assert status["currentReplicas"] == 2
    finally:
        await sandbox.apply([WORKERPOOL_CRD])
        await kubectl.run("delete", "workerpool", "shrinker", "--ignore-not-found")


async def test_moving_a_pool_to_another_namespace_removes_the_old_deployment(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("create", "namespace", "pool-elsewhere")
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: mover}
        spec: {minReplicas: 1, maxReplicas: 2}
    """))
    try:
        await eventually(lambda: sandbox.ready_workers("mover", at_least=1), timeout=60,
                         what="the worker in default")
        await kubectl.run("patch", "workerpool", "mover", "--type=merge",
                          "-p", '{"spec": {"namespace": "pool-elsewhere"}}')
        moved = await generation(sandbox, "mover")
        new = await eventually(lambda: deployment_in(sandbox, "pool-elsewhere", "mover"),
                               what="the Deployment in pool-elsewhere")
        assert new["spec"]["replicas"] == 1
        await eventually(lambda: sandbox.deployment("mover"), until=lambda d: d is None,
                         timeout=10, what="the old Deployment default/conveyor-worker-mover "
                                          "to be removed")
        status = await eventually(
            lambda: pool_status(sandbox, "mover"),
            until=lambda s: s.get("observedGeneration") == moved
            and ready_condition(s).get("status") == "True", what="the moved pool Ready")
        assert status["deployment"] == "pool-elsewhere/conveyor-worker-mover"
    finally:
        await kubectl.run("delete", "workerpool", "mover", "--ignore-not-found")


async def test_pool_in_a_missing_namespace_reports_a_condition(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: lost-namespace}
        spec: {namespace: no-such-namespace, minReplicas: 0, maxReplicas: 1}
    """))
    try:
        status = await eventually(
            lambda: pool_status(sandbox, "lost-namespace"),
            until=lambda s: ready_condition(s).get("reason") == "NamespaceNotFound",
            what="the NamespaceNotFound condition")
        ready = ready_condition(status)
        assert ready["status"] == "False"
        assert "namespace no-such-namespace not found" in ready["message"], ready
        assert status["observedGeneration"] == await generation(sandbox, "lost-namespace")
        assert status["currentReplicas"] == 0

        # kopf retries; the condition explains why, so the log does not call it an error.
        async def retry_lines() -> list[str]:
            assert sandbox.operator is not None
            return [line for line in sandbox.operator.log().splitlines()
                    if "namespace no-such-namespace not found" in line]

        lines = await eventually(retry_lines, what="kopf's line about the retry")
        assert all(" INFO kopf.objects: " in line for line in lines), lines
    finally:
        await kubectl.run("delete", "workerpool", "lost-namespace", "--ignore-not-found")


async def test_moving_a_pool_to_a_missing_namespace_keeps_it_until_the_namespace_exists(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: wanderer}
        spec: {minReplicas: 1, maxReplicas: 2}
    """))
    try:
        await eventually(lambda: sandbox.ready_workers("wanderer", at_least=1), timeout=60,
                         what="the worker in default")
        await kubectl.run("patch", "workerpool", "wanderer", "--type=merge",
                          "-p", '{"spec": {"namespace": "pool-later"}}')
        moved = await generation(sandbox, "wanderer")
        status = await eventually(
            lambda: pool_status(sandbox, "wanderer"),
            until=lambda s: ready_condition(s).get("reason") == "NamespaceNotFound",
            what="the NamespaceNotFound condition")
        assert ready_condition(status)["status"] == "False"
        assert ready_condition(status)["observedGeneration"] == moved
        assert status["observedGeneration"] == moved
        # Nothing runs in the new place yet, so the old Deployment keeps its size and the
        # status still names it.
        assert (await sandbox.deployment("wanderer"))["spec"]["replicas"] == 1
        assert status["deployment"] == "default/conveyor-worker-wanderer"
        assert status["currentReplicas"] == 1

        await kubectl.run("create", "namespace", "pool-later")
        await eventually(lambda: deployment_in(sandbox, "pool-later", "wanderer"), timeout=30,
                         what="the Deployment in pool-later once the namespace exists")
        await eventually(lambda: sandbox.deployment("wanderer"), until=lambda d: d is None,
                         timeout=10, what="the old Deployment to be removed")
        status = await eventually(lambda: pool_status(sandbox, "wanderer"),
                                  until=lambda s: ready_condition(s).get("status") == "True",
                                  what="the moved pool Ready")
        assert status["deployment"] == "pool-later/conveyor-worker-wanderer"
        assert status["observedGeneration"] == moved
    finally:
        await kubectl.run("delete", "workerpool", "wanderer", "--ignore-not-found")
