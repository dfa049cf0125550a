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
          executionDefaults: {ttlSecondsAfterFinished: 3}
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
        spec: {workflowRef: {name: ttl-none}, ttlSecondsAfterFinished: 2}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: ttl-kept}
        spec: {workflowRef: {name: ttl-none}}
    """))
    # The uids first: an object may be finished and deleted before a poll for its phase
    # would see it Succeeded (a slow machine); the engine keeps the run by uid.
    uids = {}
    for name in ("ttl-default", "ttl-own", "ttl-kept"):
        found = await sandbox.get("executions", name)
        assert found is not None, f"{name} is gone before its run could finish"
        uids[name] = found["metadata"]["uid"]
    for name, ttl in (("ttl-own", 2), ("ttl-default", 3)):
        await eventually(lambda n=name: sandbox.get("executions", n),
                         until=lambda e: e is None, timeout=60, interval=0.1,
                         what=f"{name} to be deleted")
        gone = datetime.now(UTC)
        # The object is gone, the run's history is not (found by the object's uid, the
        # engine's idempotency key).
        execution_id = await sandbox_engine.find(uids[name])
        assert execution_id is not None
        state = await sandbox_engine.get(execution_id)
        assert state is not None and state.phase == "Succeeded"
        # Timed from status.finishedAt, which has whole seconds (as a Job's completionTime):
        # up to one second earlier than the engine's exact finish.
        assert (gone - state.finished_at).total_seconds() >= ttl - 1, (name, gone, state)
        attempts = await sandbox_engine.attempts(execution_id)
        assert [(a.task, a.outcome) for a in attempts] == [("one", "Succeeded")]
    # Neither the Execution nor its Workflow sets a TTL: kept, though it finished too.
    kept = await eventually(lambda: sandbox.get("executions", "ttl-kept"),
                            until=lambda e: (e or {}).get("status", {}).get("phase")
                            == "Succeeded", timeout=60, what="ttl-kept to succeed")
    assert kept["metadata"]["uid"] == uids["ttl-kept"]
    await kubectl.run("delete", "executions", "ttl-kept", "--wait=false")
    await kubectl.run("delete", "workflows", "ttl-short", "ttl-none", "--wait=false")
