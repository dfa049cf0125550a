"""End to end (issue 12 item 4): an Execution's ``spec.activeDeadlineSeconds`` through
kubectl, the real operator and real workers: a long call is interrupted, the run ends
Failed with reason DeadlineExceeded on its status and Events, its finally task still
runs, and the field is fixed once submitted (the CRD's rule)."""

from __future__ import annotations

import json

import pytest

from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.e2e.sandbox.test_execution_spec_lifecycle import condition, phase_is, task_phases
from tests.support.counting import counting_server
from tests.support.manifests import manifest

pytestmark = pytest.mark.e2e


async def test_active_deadline_seconds_on_an_execution(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    with counting_server() as (base, hits):
        await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
            apiVersion: conveyor.dev/v1alpha1
            kind: Workflow
            metadata: {{name: deadline}}
            spec:
              activeDeadlineSeconds: 600
              tasks:
                - {{name: long, type: http, params: {{url: "{base}/slow/40/long"}}}}
              finally:
                - name: cleanup
                  type: set
                  params: {{reason: "${{{{ execution.reason }}}}"}}
            ---
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {{name: deadline-1}}
            spec: {{workflowRef: {{name: deadline}}, activeDeadlineSeconds: 3}}
        """))
        failed = await phase_is(sandbox, "deadline-1", "Failed", timeout=30)
    assert hits.get("/slow/40/long") == 1
    status = failed["status"]
    assert condition(failed, "Ready") == ("False", "DeadlineExceeded")
    assert condition(failed, "Stalled") == ("True", "DeadlineExceeded")
    assert "activeDeadlineSeconds (3s) passed" in status["message"]
    assert task_phases(failed) == {"long": "Cancelled", "cleanup": "Succeeded"}
    refused = await kubectl.run("patch", "execution", "deadline-1", "--type", "merge", "-p",
                                json.dumps({"spec": {"activeDeadlineSeconds": 60}}),
                                check=False)
    assert refused.returncode != 0 and "activeDeadlineSeconds" in refused.stderr
