"""The operator's maintenance commands against the emulated API: what the chart's hooks run."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from conveyor_sandbox.apiserver import SandboxApiServer
from tests.e2e.kubectl import Kubectl

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


async def operator_command(kubeconfig: Path, *args: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "conveyor_operator", *args,
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": "default"},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        stdin=asyncio.subprocess.DEVNULL)
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode()


async def test_crds_check_then_apply_then_check(kubeconfig: Path, kubectl: Kubectl) -> None:
    code, out = await operator_command(kubeconfig, "crds", "check")
    assert code == 3 and "workflows.conveyor.dev" in out
    code, out = await operator_command(kubeconfig, "crds", "apply")
    assert code == 0, out
    assert out.count("created") == 4, out  # executions, schedules, workerpools, workflows
    code, out = await operator_command(kubeconfig, "crds", "check")
    assert code == 0, out
    code, out = await operator_command(kubeconfig, "crds", "apply")
    assert code == 0 and out.count("replaced") == 4, out
    names = (await kubectl.run("get", "crd", "-o", "name")).stdout
    assert "workerpools.conveyor.dev" in names and "schedules.conveyor.dev" in names


async def test_operator_refuses_to_start_on_missing_crds(kubeconfig: Path) -> None:
    code, out = await operator_command(kubeconfig, "run")
    assert code == 3
    assert "workflows.conveyor.dev" in out


async def test_release_finalizers_stops_the_operator_and_frees_every_object(
    apiserver: SandboxApiServer, kubeconfig: Path, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", str(ROOT / "crds"))
    await kubectl.run("apply", "-f", "-", stdin="""
apiVersion: apps/v1
kind: Deployment
metadata: {name: conveyor-operator, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: op}}
  template:
    metadata: {labels: {app: op}}
    spec: {containers: [{name: op, image: example/conveyor:1}]}
---
apiVersion: conveyor.dev/v1alpha1
kind: Workflow
metadata: {name: w, finalizers: [conveyor.dev/cancel-on-delete, example.com/keep]}
spec: {tasks: [{name: a, type: set}]}
---
apiVersion: conveyor.dev/v1alpha1
kind: Execution
metadata: {name: e, finalizers: [conveyor.dev/cancel-on-delete]}
spec: {workflowRef: {name: w}}
""")
    code, out = await operator_command(kubeconfig, "release-finalizers",
                                       "--operator-deployment", "conveyor-operator")
    assert code == 0, out
    assert "operator default/conveyor-operator stopped" in out
    assert "released finalizers of 2 object(s)" in out
    workflow = (await kubectl.run("get", "workflow", "w", "-o", "json")).stdout
    assert "example.com/keep" in workflow and "conveyor.dev/" not in workflow.split(
        '"finalizers"')[1].split("]")[0]
    await kubectl.run("delete", "execution", "e", "--timeout=20s")
    gone = await kubectl.run("get", "execution", "e", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
