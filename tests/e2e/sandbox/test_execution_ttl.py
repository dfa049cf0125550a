"""End to end: ``ttlSecondsAfterFinished`` deletes a finished Execution object (its own value
or its Workflow's ``executionDefaults``), and its history stays readable in the engine."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor_engine.api import Engine
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


async def test_finished_executions_are_deleted_after_their_ttl_and_history_stays(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: ttl-short}
        spec:
          executionDefaults: {ttlSecondsAfterFinished: 2}
          tasks: [{name: one, type: set, params: {v: 1}}]
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: ttl-none}
        spec:
          tasks: [{name: one, type: set, params: {v: 1}}]
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: ttl-default}
        spec: {workflowRef: {name: ttl-short}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: ttl-own}
        spec: {workflowRef: {name: ttl-none}, ttlSecondsAfterFinished: 1}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: ttl-kept}
        spec: {workflowRef: {name: ttl-none}}
    """))
    finished = {}
    for name in ("ttl-default", "ttl-own", "ttl-kept"):
        seen = await eventually(lambda n=name: sandbox.get("executions", n),
                                until=lambda e: (e or {}).get("status", {}).get("phase")
                                == "Succeeded", timeout=60, what=f"{name} to succeed")
        finished[name] = seen["status"]
    for name, ttl in (("ttl-own", 1), ("ttl-default", 2)):
        await eventually(lambda n=name: sandbox.get("executions", n),
                         until=lambda e: e is None, timeout=30, interval=0.1,
                         what=f"{name} to be deleted")
        gone = datetime.now(UTC)
        done = datetime.fromisoformat(finished[name]["finishedAt"].replace("Z", "+00:00"))
        # finishedAt is written at whole seconds at worst: allow one second of rounding.
        assert (gone - done).total_seconds() >= ttl - 1, (name, gone, done)
        # The object is gone, the run's history is not.
        state = await sandbox_engine.get(finished[name]["executionId"])
        assert state is not None and state.phase == "Succeeded"
        attempts = await sandbox_engine.attempts(finished[name]["executionId"])
        assert [(a.task, a.outcome) for a in attempts] == [("one", "Succeeded")]
    # Neither the Execution nor its Workflow sets a TTL: kept.
    assert await sandbox.get("executions", "ttl-kept") is not None
    await kubectl.run("delete", "executions", "ttl-kept", "--wait=false")
    await kubectl.run("delete", "workflows", "ttl-short", "ttl-none", "--wait=false")
