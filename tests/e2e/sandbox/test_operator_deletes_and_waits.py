"""End to end: an Execution's finalizer never waits for an Event (a namespace deleted under
a running Execution), and an Execution waiting for its Workflow costs no API writes."""

from __future__ import annotations

import time

import pytest

from conveyor_engine.api import Engine
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


async def namespace_exists(kubectl: Kubectl, name: str) -> bool:
    found = await kubectl.run("get", "namespace", name, "--ignore-not-found", "-o", "name")
    return bool(found.stdout.strip())


async def test_deleting_a_namespace_under_a_running_execution_takes_seconds_not_a_minute(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    ns = "doomed"
    await kubectl.run("create", "namespace", ns)
    await kubectl.run("apply", "-n", ns, "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: nap}
        spec: {tasks: [{name: nap, type: wait, params: {duration: 300s}}]}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: sleeper}
        spec: {workflowRef: {name: nap}}
    """))
    running = await eventually(lambda: sandbox.get("executions", "sleeper", ns),
                               until=lambda e: (e or {}).get("status", {}).get("phase")
                               == "Running", timeout=60, what="sleeper to run")
    execution_id = running["status"]["executionId"]

    started = time.monotonic()
    await kubectl.run("delete", "namespace", ns, "--wait=false")
    # The delete handler's Cancelled Event is refused (403: the namespace is terminating);
    # it used to fail the handler, which kopf retried after 60 s, holding the finalizer.
    await eventually(lambda: namespace_exists(kubectl, ns), until=lambda there: not there,
                     timeout=20, interval=0.2, what=f"namespace {ns} to be gone")
    took = time.monotonic() - started
    assert took < 15, f"the namespace took {took:.1f}s to go"
    state = await sandbox_engine.get(execution_id)
    assert state.phase == "Cancelled"
