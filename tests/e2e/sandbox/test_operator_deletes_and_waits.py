"""End to end: an Execution's finalizer never waits for an Event (a namespace deleted under
a running Execution), and an Execution waiting for its Workflow costs no API writes."""

from __future__ import annotations

import asyncio
import time

import pytest

from conveyor_engine.api import Engine
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.conditions import ready_condition
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


WRITES = {"create", "update", "patch", "delete"}
#: How long a waiting Execution is watched for writes. Before the fix it cost three writes
#: every CONVEYOR_WORKFLOW_RETRY_SECONDS (2 s), so this window saw at least six; measuring an
#: absence needs a window, which is why this one test waits a fixed time.
WINDOW = 6.0


def writes_to(sandbox: Sandbox, since: int, name: str) -> list[str]:
    return [f"{r.verb} {r.resource}/{r.subresource}" for r in sandbox.api.requests[since:]
            if r.verb in WRITES and r.resource == "executions" and r.name == name]


async def test_a_waiting_execution_costs_no_writes_and_starts_when_its_workflow_appears(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: patient}
        spec: {workflowRef: {name: arrives-later}}
    """))
    await eventually(lambda: sandbox.get("executions", "patient"),
                     until=lambda e: ready_condition((e or {}).get("status")).get("reason")
                     == "WorkflowNotFound", timeout=30, what="patient to wait")
    # kopf's bookkeeping of the handler lands right after the status: let it settle.
    settled = await eventually(lambda: _writes_settled(sandbox, "patient"), timeout=10,
                               what="the first writes to settle")
    mark = len(sandbox.api.requests)
    await asyncio.sleep(WINDOW)
    assert writes_to(sandbox, mark, "patient") == [], "writes while waiting"
    waiting = await sandbox.get("executions", "patient")
    annotations = waiting["metadata"].get("annotations") or {}
    assert len(str(annotations)) < 2000, annotations
    assert settled

    started = asyncio.get_running_loop().time()
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: arrives-later}
        spec: {tasks: [{name: a, type: set, params: {v: 1}}]}
    """))
    done = await eventually(lambda: sandbox.get("executions", "patient"),
                            until=lambda e: (e or {}).get("status", {}).get("phase")
                            == "Succeeded", timeout=30, what="patient to run")
    took = asyncio.get_running_loop().time() - started
    assert took < 10, f"started {took:.1f}s after its Workflow appeared"
    assert done["status"]["executionId"]


async def _writes_settled(sandbox: Sandbox, name: str) -> bool:
    """True once no write to ``name`` happened in the last second."""
    mark = len(sandbox.api.requests)
    await asyncio.sleep(1.0)
    return not writes_to(sandbox, mark, name)
