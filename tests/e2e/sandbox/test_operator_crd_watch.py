"""End to end: an operator CRD replaced under the running operator by an older one (whose
status schema lacks a field, so the API server prunes it) is reported, and once the right
CRD is back every status is rewritten whole."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conveyor_operator.crdcheck import expected_crds
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e
CRD = "executions.conveyor.dev"


def older_executions_crd() -> dict[str, Any]:
    """The Execution CRD as an older release had it: no ``status.workflowHash``."""
    crd = copy.deepcopy(next(c for c in expected_crds() if c["metadata"]["name"] == CRD))
    crd["metadata"]["labels"]["conveyor.dev/crd-version"] = "0"
    for version in crd["spec"]["versions"]:
        status = version["schema"]["openAPIV3Schema"]["properties"]["status"]
        status["properties"].pop("workflowHash", None)
    return crd


async def crd_events(kubectl: Kubectl, reason: str) -> list[str]:
    found = await kubectl.run("get", "events", "-A", "--field-selector",
                              f"involvedObject.name={CRD},reason={reason}", "-o",
                              "jsonpath={.items[*].message}")
    return [m for m in found.stdout.split("\n") if m.strip()]


async def test_a_crd_replaced_by_an_older_one_is_reported_and_status_repaired_after(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    current = next(c for c in expected_crds() if c["metadata"]["name"] == CRD)
    try:
        await sandbox.apply_objects([older_executions_crd()])
        messages = await eventually(lambda: crd_events(kubectl, "CrdMismatch"), timeout=30,
                                    what="the CrdMismatch Event")
        assert "version 0, this operator needs version" in messages[0], messages
        assert "CRD executions.conveyor.dev no longer matches" in sandbox.operator.log()

        await kubectl.run("apply", "-f", "-", stdin=manifest("""
            apiVersion: conveyor.dev/v1alpha1
            kind: Workflow
            metadata: {name: crd-pruned}
            spec: {tasks: [{name: a, type: set, params: {v: 1}}]}
            ---
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {name: crd-pruned-run}
            spec: {workflowRef: {name: crd-pruned}}
        """))
        done = await sandbox.wait_finished([("default", "crd-pruned-run")], timeout=60)
        assert done[0]["status"]["phase"] == "Succeeded"
        assert "workflowHash" not in done[0]["status"]  # pruned by the older schema
    finally:
        await sandbox.apply_objects([current])
    await eventually(lambda: crd_events(kubectl, "CrdMatches"), timeout=30,
                     what="the CrdMatches Event")
    repaired = await eventually(lambda: sandbox.get("executions", "crd-pruned-run"),
                                until=lambda e: "workflowHash" in (e or {}).get("status", {}),
                                timeout=30, what="the status to be rewritten whole")
    assert repaired["status"]["phase"] == "Succeeded"
    assert repaired["status"]["workflowHash"].startswith("sha256:")
