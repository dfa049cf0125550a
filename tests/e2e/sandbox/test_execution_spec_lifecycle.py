"""End to end: an Execution's lifecycle in its spec (issue 9), through kubectl, the real
operator and real workers: ``spec.suspend``, ``spec.cancel`` (the object and its history
stay) and ``spec.retry`` (retry from the failed step: a counting receiver sees the tasks
that succeeded once). The CRD lets exactly these fields change."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.counting import counting_server
from tests.support.manifests import manifest
from tests.support.polling import eventually
from tests.support.scripted_http import scripted_server

pytestmark = pytest.mark.e2e


async def patch_spec(kubectl: Kubectl, name: str, spec: dict[str, Any], *,
                     check: bool = True):
    return await kubectl.run("patch", "execution", name, "--type", "merge", "-p",
                             json.dumps({"spec": spec}), check=check)


def condition(found: dict[str, Any] | None, kind: str) -> tuple[str, str] | None:
    for cond in ((found or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond["status"], cond["reason"]
    return None


def task_phases(found: dict[str, Any] | None) -> dict[str, str]:
    return {t["name"]: t["phase"] for t in ((found or {}).get("status") or {}).get("tasks", [])}


async def phase_is(sandbox: Sandbox, name: str, phase: str, timeout: float = 60) -> dict:
    return await eventually(lambda: sandbox.get("executions", name),
                            until=lambda e: (e or {}).get("status", {}).get("phase") == phase,
                            timeout=timeout, interval=0.1, what=f"{name} to be {phase}")


async def events_of(kubectl: Kubectl, name: str, reason: str) -> str:
    found = await eventually(
        lambda: kubectl.run("get", "events", "--field-selector",
                            f"involvedObject.name={name}"),
        until=lambda r: reason in r.stdout, what=f"a {reason} Event on {name}")
    return found.stdout


async def test_retry_from_the_failed_step_runs_only_what_did_not_succeed(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    script = {"/a": [(200, {})], "/b": [(500, {}), (200, {})], "/c": [(200, {})]}
    with scripted_server(script) as (base, arrivals):
        await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
            apiVersion: conveyor.dev/v1alpha1
            kind: Workflow
            metadata: {{name: retry-step}}
            spec:
              tasks:
                - {{name: a, type: http, params: {{url: "{base}/a"}}}}
                - {{name: b, type: http, dependsOn: [a], params: {{url: "{base}/b"}}}}
                - {{name: c, type: http, dependsOn: [b], params: {{url: "{base}/c"}}}}
            ---
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {{name: retry-step-1}}
            spec: {{workflowRef: {{name: retry-step}}}}
        """))
        failed = await phase_is(sandbox, "retry-step-1", "Failed")
        assert task_phases(failed) == {"a": "Succeeded", "b": "Failed", "c": "Skipped"}

        # Only the lifecycle fields may change: the inputs, the workflow and a lower retry
        # are refused by the CRD's rules, with a message naming what may change.
        refused = await patch_spec(kubectl, "retry-step-1", {"inputs": {"x": 1}}, check=False)
        assert refused.returncode != 0 and "immutable" in refused.stderr, refused.stderr
        # A priority edit would be ignored (the tasks are queued in their band), so it is
        # refused rather than accepted silently.
        refused = await patch_spec(kubectl, "retry-step-1", {"priority": 5}, check=False)
        assert refused.returncode != 0 and "spec.priority" in refused.stderr, refused.stderr

        await patch_spec(kubectl, "retry-step-1", {"retry": 1})
        done = await phase_is(sandbox, "retry-step-1", "Succeeded")
        assert done["status"]["retries"] == 1
        assert task_phases(done) == {"a": "Succeeded", "b": "Succeeded", "c": "Succeeded"}
        assert {path: len(seen) for path, seen in arrivals.items()} == {
            "/a": 1, "/b": 2, "/c": 1}
        assert "retry 1 from the failed step" in await events_of(kubectl, "retry-step-1",
                                                                 "Retried")
        lower = await patch_spec(kubectl, "retry-step-1", {"retry": 0}, check=False)
        assert lower.returncode != 0 and "may only be raised" in lower.stderr, lower.stderr
        # The same value applied again (a GitOps sync) changes nothing: the object's
        # generation does not move, and nothing runs again.
        again = await kubectl.run("apply", "-f", "-", stdin=manifest("""
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {name: retry-step-1}
            spec: {workflowRef: {name: retry-step}, retry: 1}
        """))
        assert "unchanged" in again.stdout or "configured" in again.stdout
        final = await sandbox.get("executions", "retry-step-1")
        assert final["status"]["phase"] == "Succeeded" and final["status"]["retries"] == 1
        assert len(arrivals["/a"]) == 1 and len(arrivals["/b"]) == 2


async def test_suspend_holds_new_tasks_and_resume_continues(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    with counting_server() as (base, hits):
        await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
            apiVersion: conveyor.dev/v1alpha1
            kind: Workflow
            metadata: {{name: two-steps}}
            spec:
              tasks:
                - {{name: a, type: http, params: {{url: "{base}/slow/2/a"}}}}
                - {{name: b, type: http, dependsOn: [a], params: {{url: "{base}/b"}}}}
            ---
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {{name: created-suspended}}
            spec: {{workflowRef: {{name: two-steps}}, suspend: true}}
            ---
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {{name: suspended-midway}}
            spec: {{workflowRef: {{name: two-steps}}}}
        """))
        parked = await eventually(lambda: sandbox.get("executions", "created-suspended"),
                                  until=lambda e: condition(e, "Suspended") is not None,
                                  what="created-suspended to say it is suspended")
        assert condition(parked, "Suspended") == ("True", "Suspended")
        assert condition(parked, "Ready") == ("False", "Suspended")

        await eventually(lambda: sandbox.get("executions", "suspended-midway"),
                         until=lambda e: task_phases(e).get("a") == "Running",
                         interval=0.05, what="a to run")
        await patch_spec(kubectl, "suspended-midway", {"suspend": True})
        held = await eventually(lambda: sandbox.get("executions", "suspended-midway"),
                                until=lambda e: task_phases(e) == {"a": "Succeeded",
                                                                   "b": "Ready"}
                                and condition(e, "Suspended") == ("True", "Suspended"),
                                what="a to finish and b to be held")
        assert held["status"]["phase"] == "Running"
        await events_of(kubectl, "suspended-midway", "Suspended")
        # Both runs are held: a third run on the same workers finishes meanwhile, and
        # neither held task has been called.
        await kubectl.run("apply", "-f", "-", stdin=manifest("""
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {name: runs-meanwhile}
            spec: {workflowRef: {name: two-steps}}
        """))
        await phase_is(sandbox, "runs-meanwhile", "Succeeded")
        assert hits == {"/slow/2/a": 2, "/b": 1}, hits  # the midway run's a, and the third's

        for name in ("suspended-midway", "created-suspended"):
            await patch_spec(kubectl, name, {"suspend": False})
            resumed = await phase_is(sandbox, name, "Succeeded")
            # Finished: neither suspended nor resumed any more, so the condition is gone
            # (the Resumed Event tells the story).
            assert condition(resumed, "Suspended") is None
            await events_of(kubectl, name, "Resumed")
    assert hits == {"/slow/2/a": 3, "/b": 3}, hits


async def test_cancel_without_delete_keeps_the_object_and_its_history(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: long-nap}
        spec: {tasks: [{name: nap, type: wait, params: {duration: 300s}}]}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: cancel-me}
        spec: {workflowRef: {name: long-nap}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: cancel-waiting}
        spec: {workflowRef: {name: not-there-yet}}
    """))
    await phase_is(sandbox, "cancel-me", "Running")
    await patch_spec(kubectl, "cancel-me", {"cancel": True})
    cancelled = await phase_is(sandbox, "cancel-me", "Cancelled")
    assert task_phases(cancelled) == {"nap": "Cancelled"}
    assert "spec.cancel" in cancelled["status"]["message"]
    assert cancelled["status"]["executionId"]
    await events_of(kubectl, "cancel-me", "Cancelled")
    # A change that asks nothing of a finished run is still observed.
    await patch_spec(kubectl, "cancel-me", {"suspend": True})
    await eventually(lambda: sandbox.get("executions", "cancel-me"),
                     until=lambda e: e["status"].get("observedGeneration")
                     == e["metadata"]["generation"] and e["status"]["phase"] == "Cancelled",
                     what="the new generation to be observed")

    await eventually(lambda: sandbox.get("executions", "cancel-waiting"),
                     until=lambda e: "not found" in ((e or {}).get("status") or {}).get(
                         "message", ""), what="cancel-waiting to wait for its workflow")
    await patch_spec(kubectl, "cancel-waiting", {"cancel": True})
    never = await phase_is(sandbox, "cancel-waiting", "Cancelled")
    assert "executionId" not in never["status"]
