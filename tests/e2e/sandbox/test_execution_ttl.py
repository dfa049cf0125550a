"""End to end: ``ttlSecondsAfterFinished`` deletes a finished Execution object (its own value,
its Workflow's ``executionDefaults`` or its Namespace's annotation, in that order), and its
history stays readable in the engine."""

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


async def test_a_namespace_annotation_gives_a_default_ttl_after_the_workflows(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: v1
        kind: Namespace
        metadata:
          name: ttl-team
          annotations: {conveyor.dev/ttl-seconds-after-finished: "2"}
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: ttl-broken
          annotations: {conveyor.dev/ttl-seconds-after-finished: "1h"}
    """))
    one_task = "tasks: [{name: one, type: set, params: {v: 1}}]"
    await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {{name: plain, namespace: ttl-team}}
        spec: {{{one_task}}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {{name: long, namespace: ttl-team}}
        spec:
          executionDefaults: {{ttlSecondsAfterFinished: 3600}}
          {one_task}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {{name: plain, namespace: ttl-broken}}
        spec: {{{one_task}}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {{name: by-workflow, namespace: ttl-team}}
        spec: {{workflowRef: {{name: long}}}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {{name: kept, namespace: ttl-broken}}
        spec: {{workflowRef: {{name: plain}}}}
    """))
    # These two finish first: were the namespace's 2 s applied to them, the reaper (one heap,
    # in due order) would delete them before the Execution below.
    await sandbox.wait_finished([("ttl-team", "by-workflow"), ("ttl-broken", "kept")],
                                timeout=60)
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: by-namespace, namespace: ttl-team}
        spec: {workflowRef: {name: plain}}
    """))
    found = await sandbox.get("executions", "by-namespace", "ttl-team")
    assert found is not None, "by-namespace is gone before its run could finish"
    uid = found["metadata"]["uid"]
    await eventually(lambda: sandbox.get("executions", "by-namespace", "ttl-team"),
                     until=lambda e: e is None, timeout=60, interval=0.1,
                     what="by-namespace to be deleted by its namespace's default")
    gone = datetime.now(UTC)
    execution_id = await sandbox_engine.find(uid)
    assert execution_id is not None
    state = await sandbox_engine.get(execution_id)
    assert state is not None and state.phase == "Succeeded"
    assert (gone - state.finished_at).total_seconds() >= 2 - 1, (gone, state)
    # The Workflow's default (an hour) wins over the namespace's.
    assert await sandbox.get("executions", "by-workflow", "ttl-team") is not None
    # A bad annotation is no default: kept, and the Execution says why.
    assert await sandbox.get("executions", "kept", "ttl-broken") is not None
    events = await eventually(
        lambda: kubectl.run("get", "events", "-n", "ttl-broken", "--field-selector",
                            "involvedObject.name=kept"),
        until=lambda r: "InvalidTTLAnnotation" in r.stdout, timeout=30,
        what="the InvalidTTLAnnotation event")
    assert "'1h'" in events.stdout and "Warning" in events.stdout, events.stdout
    await kubectl.run("delete", "namespace", "ttl-team", "ttl-broken", "--wait=false")
