"""Pools advertise what they run, end to end in the sandbox (issue 11 item 2): a Workflow
using a custom task type on a pool with no worker yet waits with ``TaskTypeUnavailable``,
the pool gets a worker to advertise, and the Workflow compiles and runs once it has; the
pool's task types show in ``kubectl get workerpools -o wide``. The sandbox's workers have
the example package (``checksum``, ``word-count``) installed."""

from __future__ import annotations

import pytest

from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.conditions import ready_condition
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


async def status(sandbox: Sandbox, plural: str, name: str) -> dict:
    found = await sandbox.get(plural, name, "default")
    return (found or {}).get("status", {})


async def test_a_workflow_waits_for_its_pool_to_advertise_then_runs(
        sandbox: Sandbox, kubectl: Kubectl) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: adverts}
        spec: {minReplicas: 0, maxReplicas: 2, scaleDownStabilizationSeconds: 3,
               shutdownGraceSeconds: 5}
    """))
    pool = await eventually(lambda: sandbox.get_cluster("workerpools", "adverts"),
                            until=lambda p: ready_condition((p or {}).get("status"))
                            .get("status") == "True",
                            timeout=30, what="the pool to be Ready (at zero)")
    assert pool["status"]["currentReplicas"] == 0
    assert not pool["status"].get("taskTypes")  # never advertised

    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: adverts}
        spec:
          pool: adverts
          tasks:
            - {name: count, type: word-count, params: {text: "a b a", top: 1}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: adverts-run}
        spec: {workflowRef: {name: adverts}}
    """))
    waiting = await eventually(
        lambda: status(sandbox, "workflows", "adverts"),
        until=lambda s: bool(ready_condition(s)), interval=0.02, timeout=30,
        what="the Workflow's first status")
    ready = ready_condition(waiting)
    assert (ready["status"], ready["reason"]) == ("False", "TaskTypeUnavailable"), waiting
    assert ready["message"] == ("no running worker of pool 'adverts' has task type "
                                "'word-count' yet (task 'count')")

    # the pool gets a worker for the Workflow, which advertises; the Workflow compiles
    compiled = await eventually(
        lambda: status(sandbox, "workflows", "adverts"),
        until=lambda s: ready_condition(s).get("status") == "True", timeout=60,
        what="the Workflow to compile once the pool's worker advertised")
    assert ready_condition(compiled)["reason"] == "Compiled"
    [done] = await sandbox.wait_finished([("default", "adverts-run")], timeout=60)
    assert done["status"]["phase"] == "Succeeded", done["status"]

    served = await eventually(lambda: sandbox.get_cluster("workerpools", "adverts"),
                              until=lambda p: bool((p or {}).get("status", {}).get("taskTypes")),
                              timeout=30, what="the pool's task types on its status")
    by_name = {t["name"]: t for t in served["status"]["taskTypes"]}
    assert by_name["word-count"] == {"name": "word-count", "package": "conveyor-example-tasks",
                                     "version": "0.1.0"}
    assert {"checksum", "http", "set", "wait"} <= set(by_name)
    wide = (await kubectl.run("get", "workerpools", "adverts", "-o", "wide")).stdout
    header, row = wide.splitlines()[:2]
    assert "TASK-TYPES" in header
    assert "checksum,http,set,wait,word-count" in row
    narrow = (await kubectl.run("get", "workerpools", "adverts")).stdout
    assert "TASK-TYPES" not in narrow  # priority 1: -o wide only


async def test_an_unmounted_secret_is_refused_then_accepted_once_the_pool_mounts_it(
        sandbox: Sandbox, kubectl: Kubectl) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: vault}
        spec: {minReplicas: 0, maxReplicas: 1}
    """))
    await eventually(lambda: sandbox.get_cluster("workerpools", "vault"),
                     until=lambda p: ready_condition((p or {}).get("status"))
                     .get("status") == "True", timeout=30, what="the pool to be Ready")
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: vault}
        spec:
          pool: vault
          tasks:
            - {name: pay, type: set, params: {values: {t: "${{ secrets.payments.token }}"}}}
    """))
    refused = await eventually(lambda: status(sandbox, "workflows", "vault"),
                               until=lambda s: bool(ready_condition(s)), timeout=30,
                               what="the Workflow's status")
    ready = ready_condition(refused)
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert ("task \"pay\": params.values.t: reads secret 'payments', which pool 'vault' does "
            "not mount (spec.secrets)") in ready["message"]

    await kubectl.run("patch", "workerpool", "vault", "--type=merge",
                      "-p", '{"spec": {"secrets": [{"name": "payments", "optional": true}]}}')
    await eventually(lambda: status(sandbox, "workflows", "vault"),
                     until=lambda s: ready_condition(s).get("status") == "True", timeout=30,
                     what="the Workflow to compile once the pool mounts the Secret")
