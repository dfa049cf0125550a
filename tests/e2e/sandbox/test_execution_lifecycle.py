"""End to end: Executions deleted early, re-created under the same name, refused, or
waiting for a pool that cannot run them.

Raw API calls (not kubectl) where the test must act within milliseconds of the operator.
"""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest

from conveyor_engine.api import Engine
from conveyor_operator.kube import Kube, ObjectRef
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.conditions import ready_condition
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e
EXECUTIONS = "/apis/conveyor.dev/v1alpha1/namespaces/default/executions"


async def long_wait_workflow(sandbox: Sandbox, kubectl: Kubectl, name: str) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {{name: {name}}}
        spec: {{tasks: [{{name: nap, type: wait, params: {{duration: 120s}}}}]}}
    """))
    await eventually(lambda: sandbox.get("workflows", name),
                     until=lambda w: w and w.get("status", {}).get("contentHash"),
                     what=f"workflow {name} to compile")


def ready_reason(found: dict[str, Any] | None) -> str | None:
    """The reason of an object's Ready condition, None before it has one."""
    return ready_condition((found or {}).get("status")).get("reason")


def execution(name: str, workflow: str) -> dict[str, Any]:
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Execution",
            "metadata": {"name": name}, "spec": {"workflowRef": {"name": workflow}}}


async def create(http: aiohttp.ClientSession, body: dict[str, Any]) -> str:
    async with http.post(EXECUTIONS, json=body) as response:
        assert response.status == 201, await response.text()
        return (await response.json())["metadata"]["uid"]


async def delete(sandbox: Sandbox, http: aiohttp.ClientSession, name: str) -> None:
    async with http.delete(f"{EXECUTIONS}/{name}") as response:
        assert response.status in (200, 202), await response.text()
    await eventually(lambda: sandbox.get("executions", name), until=lambda e: e is None,
                     interval=0.01, what=f"execution {name} to be gone")


async def test_deleting_an_execution_right_after_submission_cancels_its_run(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    await long_wait_workflow(sandbox, kubectl, "long-wait")
    async with aiohttp.ClientSession(base_url=sandbox.api.url) as http:
        uid = await create(http, execution("deleted-early", "long-wait"))
        # Delete the moment the engine has the run: before the follower writes executionId.
        execution_id = await eventually(lambda: sandbox_engine.find(uid), interval=0.005,
                                        what="the submission")
        await delete(sandbox, http, "deleted-early")
    state = await eventually(lambda: sandbox_engine.get(execution_id),
                             until=lambda s: s.phase == "Cancelled", timeout=15,
                             what="the deleted Execution's run to be cancelled")
    assert state.task("nap").phase == "Cancelled"


async def test_an_execution_recreated_under_the_same_name_shows_and_cancels_its_own_run(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    """What ``kubectl delete -f run.yaml && kubectl apply -f run.yaml`` does, quickly."""
    await long_wait_workflow(sandbox, kubectl, "long-wait-again")
    body = execution("reused", "long-wait-again")
    async with aiohttp.ClientSession(base_url=sandbox.api.url) as http:
        for _ in range(3):
            first_uid = await create(http, body)
            first = await eventually(lambda u=first_uid: sandbox_engine.find(u), interval=0.005,
                                     what="the first object's run")
            await delete(sandbox, http, "reused")
            second_uid = await create(http, body)
            second = await eventually(lambda u=second_uid: sandbox_engine.find(u),
                                      what="the second object's run")
            assert second != first
            shown = await eventually(
                lambda: sandbox.get("executions", "reused"),
                until=lambda e: e and e.get("status", {}).get("executionId"),
                what="the second object's status")
            assert shown["status"]["executionId"] == second
            assert shown["metadata"]["uid"] == second_uid

            await delete(sandbox, http, "reused")
            for run in (first, second):
                await eventually(lambda r=run: sandbox_engine.get(r),
                                 until=lambda s: s.phase == "Cancelled", timeout=15,
                                 what=f"run {run} to be cancelled")


async def test_execution_refused_for_its_inputs_gets_a_failed_event_and_no_started_event(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: greeter}
        spec:
          inputs: [{name: who, default: world}]
          tasks: [{name: greet, type: set, params: {g: "hi ${{ inputs.who }}"}}]
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: greeter-bad-inputs}
        spec: {workflowRef: {name: greeter}, inputs: {nope: 1}}
    """))
    done = (await sandbox.wait_finished([("default", "greeter-bad-inputs")], timeout=30))[0]
    assert done["status"]["phase"] == "Failed"
    assert "startedAt" not in done["status"]
    events = await eventually(
        lambda: kubectl.run("get", "events", "--field-selector",
                            "involvedObject.name=greeter-bad-inputs"),
        until=lambda r: "Failed" in r.stdout, what="the Failed event")
    assert "nope" in events.stdout
    assert "Started" not in events.stdout, events.stdout


async def test_execution_on_a_pool_that_is_not_ready_waits_unsubmitted_then_runs(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    """A pool whose Redis Secret is missing cannot run workers: nothing is queued for it."""
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: unready}
        spec:
          minReplicas: 0
          maxReplicas: 1
          redis: {urlSecretRef: {name: unready-redis, key: url}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: on-unready}
        spec: {pool: unready, tasks: [{name: a, type: set, params: {v: 1}}]}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: on-unready-run}
        spec: {workflowRef: {name: on-unready}}
    """))
    waiting = await eventually(
        lambda: sandbox.get("executions", "on-unready-run"),
        until=lambda e: ready_reason(e) == "PoolNotReady",
        what="the PoolNotReady condition")
    assert "executionId" not in waiting["status"]
    assert "RedisSecretMissing" in waiting["status"]["message"]

    # The Secret appears (pointing at the sandbox's own Redis): the pool and the run proceed.
    url = base64.b64encode(sandbox.redis_url.encode()).decode()
    await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
        apiVersion: v1
        kind: Secret
        metadata: {{name: unready-redis, namespace: default}}
        data: {{url: {url}}}
    """))
    done = await sandbox.wait_finished([("default", "on-unready-run")], timeout=120)
    assert done[0]["status"]["phase"] == "Succeeded"


async def test_a_status_write_for_a_deleted_object_never_lands_on_its_successor(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    """The operator's status writes carry the uid they were meant for (a JSON-patch test)."""
    async with aiohttp.ClientSession(base_url=sandbox.api.url) as http:
        await long_wait_workflow(sandbox, kubectl, "successor-wait")
        old_uid = await create(http, execution("successor", "successor-wait"))
        await delete(sandbox, http, "successor")
        new_uid = await create(http, execution("successor", "successor-wait"))
    shown = await eventually(lambda: sandbox.get("executions", "successor"),
                             until=lambda e: e and e.get("status", {}).get("executionId"),
                             what="the successor's own status")
    kube = await Kube.connect(str(sandbox.kubeconfig))
    try:
        stale = ObjectRef("default", "successor", old_uid)
        assert await kube.patch_status(stale, {"phase": "Failed"}, known={}) is False
        assert await kube.patch_status(stale, {"phase": "Failed"},
                                       known=shown["status"]) is False
        # A view that is out of date (a key the object does not have) still writes, once
        # the uid matches: the whole status is replaced by the view plus the patch.
        current = ObjectRef("default", "successor", new_uid)
        outdated = {**shown["status"], "finishedAt": "2026-01-01T00:00:00Z"}
        assert await kube.patch_status(current, {"finishedAt": None, "message": "checked"},
                                       known=outdated) is True
    finally:
        await kube.close()
    found = await sandbox.get("executions", "successor")
    assert found["status"]["phase"] == shown["status"]["phase"] != "Failed"
    assert found["status"]["message"] == "checked"
    assert found["status"]["executionId"] == shown["status"]["executionId"]
    assert "finishedAt" not in found["status"]


async def test_deleting_a_running_execution_posts_a_cancelled_event(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    await long_wait_workflow(sandbox, kubectl, "cancel-me")
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: cancel-me-run}
        spec: {workflowRef: {name: cancel-me}}
    """))
    await eventually(lambda: kubectl.run("get", "events", "--field-selector",
                                         "involvedObject.name=cancel-me-run"),
                     until=lambda r: "Started" in r.stdout, what="the run to start")
    await kubectl.run("delete", "execution", "cancel-me-run", "--timeout=60s", timeout=90)
    events = await eventually(
        lambda: kubectl.run("get", "events", "--field-selector",
                            "involvedObject.name=cancel-me-run"),
        until=lambda r: "Cancelled" in r.stdout, what="the Cancelled event")
    assert "the Execution resource was deleted" in events.stdout
    assert events.stdout.count("Started") == 1


async def test_a_pool_deleted_under_a_running_execution_is_reported_until_it_returns(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    pool = manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: fleeting}
        spec: {minReplicas: 1, maxReplicas: 1, shutdownGraceSeconds: 5}
    """)
    await kubectl.run("apply", "-f", "-", stdin=pool + manifest("""
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: on-fleeting}
        spec:
          pool: fleeting
          tasks:
            - {name: nap, type: wait, params: {duration: 3s}}
            - {name: done, type: set, dependsOn: [nap], params: {ok: true}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: on-fleeting-run}
        spec: {workflowRef: {name: on-fleeting}}
    """))
    await eventually(lambda: sandbox.get("executions", "on-fleeting-run"),
                     until=lambda e: e and e.get("status", {}).get("phase") == "Running",
                     what="the run to start")
    await kubectl.run("delete", "workerpool", "fleeting", "--timeout=60s", timeout=90)

    stuck = await eventually(lambda: sandbox.get("executions", "on-fleeting-run"),
                             until=lambda e: ready_reason(e) == "PoolNotFound",
                             what="the PoolNotFound condition")
    assert "no WorkerPool named 'fleeting'" in stuck["status"]["message"]
    assert stuck["status"]["phase"] == "Running"

    await kubectl.run("apply", "-f", "-", stdin=pool)
    done = await sandbox.wait_finished([("default", "on-fleeting-run")], timeout=120)
    assert done[0]["status"]["phase"] == "Succeeded"
    assert ready_condition(done[0]["status"])["reason"] == "Succeeded"


async def test_typed_inputs_run_and_a_value_of_another_type_is_refused(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    """Workers load the stored form of the Workflow: a typed required input must survive it."""
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: typed}
        spec:
          inputs: [{name: who, type: string}, {name: times, type: integer, default: 2}]
          tasks: [{name: greet, type: set, params: {v: "${{ inputs.who }} x${{ inputs.times }}"}}]
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: typed-run}
        spec: {workflowRef: {name: typed}, inputs: {who: world}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: typed-wrong}
        spec: {workflowRef: {name: typed}, inputs: {who: world, times: "2"}}
    """))
    done = await sandbox.wait_finished([("default", "typed-run"), ("default", "typed-wrong")],
                                       timeout=60)
    assert [d["status"]["phase"] for d in done] == ["Succeeded", "Failed"], done
    state = await sandbox_engine.get(done[0]["status"]["executionId"])
    assert state.task("greet").outputs == {"v": "world x2"}
    assert "inputs.times: expected integer, got string '2'" in done[1]["status"]["message"]
