"""GitOps files: the Argo CD health check (run in a real Lua, PyPI ``lupa``), the example
repository layout (valid manifests), and syncing the same manifests twice starts one run."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest
import yaml

from conveyor_engine.compiler import compile_workflow
from conveyor_operator.resources import ExecutionResource, ScheduleResource, WorkflowResource
from conveyor_operator.schedules.cron import parse_schedule
from conveyor_operator.schedules.runs import render_inputs
from conveyor_sandbox.sandbox import Sandbox
from tests.chart.helmchart import ROOT, Rendered, validate
from tests.e2e.kubectl import Kubectl

GITOPS = ROOT / "gitops"
EXAMPLE_REPO = GITOPS / "example-repo"
LUA = (GITOPS / "argocd" / "conveyor-health.lua").read_text()


def health(obj: dict) -> tuple[str, str]:
    """Run the health script as Argo CD does: a global ``obj``, a returned table."""
    lupa = pytest.importorskip("lupa")
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(LUA)
    return result["status"], result["message"]


def cond(type_: str, status: str, reason: str, message: str = "") -> dict:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastTransitionTime": "2026-01-01T00:00:00Z"}


def res(conditions: list[dict] | None, generation: int = 1, observed: int = 1) -> dict:
    status = {} if conditions is None else {"conditions": conditions,
                                            "observedGeneration": observed}
    return {"metadata": {"name": "x", "generation": generation}, "status": status}


HEALTH = {
    "no-status-yet": (res(None), "Progressing", "Waiting for the Conveyor operator"),
    "succeeded": (res([cond("Ready", "True", "Succeeded", "4/4 tasks")]), "Healthy", "4/4"),
    "running": (res([cond("Ready", "False", "Running", "1/4"),
                     cond("Reconciling", "True", "Running", "1/4")]),
                "Progressing", "Running: 1/4"),
    "failed": (res([cond("Ready", "False", "Failed", "task x failed"),
                    cond("Stalled", "True", "TaskFailed", "task x failed")]),
               "Degraded", "TaskFailed: task x failed"),
    "invalid-workflow": (res([cond("Ready", "False", "InvalidSpec", "cycle"),
                              cond("Stalled", "True", "InvalidSpec", "cycle")]),
                         "Degraded", "InvalidSpec: cycle"),
    "stale-status": (res([cond("Ready", "True", "Compiled")], generation=2, observed=1),
                     "Progressing", "generation 2"),
    "waiting-for-workflow": (res([cond("Ready", "False", "WorkflowNotFound", "no wf")]),
                             "Progressing", "WorkflowNotFound"),
}


@pytest.mark.parametrize("case", sorted(HEALTH))
def test_argocd_health_check(case: str) -> None:
    obj, status, message = HEALTH[case]
    got_status, got_message = health(obj)
    assert got_status == status
    assert message in got_message


def test_argocd_cm_patch_carries_the_script_for_every_kind() -> None:
    patch = yaml.safe_load((GITOPS / "argocd" / "argocd-cm-health.yaml").read_text())
    keys = {k: v for k, v in patch["data"].items() if k.startswith("resource.customizations")}
    assert sorted(keys) == [f"resource.customizations.health.conveyor.dev_{kind}"
                            for kind in ("Execution", "Schedule", "WorkerPool", "Workflow")]
    assert all(script == LUA for script in keys.values())


def test_argocd_and_flux_objects_parse_and_point_at_the_example_layout() -> None:
    kinds = {}
    for path in [*(GITOPS / "argocd").glob("*.yaml"), *(GITOPS / "flux").glob("*.yaml")]:
        for doc in yaml.safe_load_all(path.read_text()):
            kinds[doc["kind"]] = doc
    assert kinds["Application"]["spec"]["source"]["path"] == "gitops/example-repo"
    assert kinds["Kustomization"]["spec"]["path"] == "./gitops/example-repo"
    assert kinds["Kustomization"]["spec"]["wait"] is True
    release = kinds["HelmRelease"]["spec"]
    assert release["upgrade"]["crds"] == "CreateReplace"
    assert release["values"]["crds"]["upgradeJob"]["enabled"] is False


def example_docs() -> list[Rendered]:
    kustomization = yaml.safe_load((EXAMPLE_REPO / "kustomization.yaml").read_text())
    docs = []
    for path in kustomization["resources"]:
        for obj in yaml.safe_load_all((EXAMPLE_REPO / path).read_text()):
            docs.append(Rendered(path, obj))
    return docs


def test_example_repository_manifests_are_valid() -> None:
    docs = example_docs()
    listed = {str(p.relative_to(EXAMPLE_REPO)) for p in EXAMPLE_REPO.rglob("*.yaml")}
    assert listed - {"kustomization.yaml"} == {d.template for d in docs}, "unlisted files"
    workflows = {}
    for doc in docs:
        validate(doc)
        if doc.kind == "Workflow":
            resource = WorkflowResource.model_validate(doc.obj)
            workflows[doc.name] = compile_workflow(doc.name, resource.spec)
    for doc in docs:
        if doc.kind == "Execution":
            execution = ExecutionResource.model_validate(doc.obj)
            workflows[execution.spec.workflow_ref.name].resolve_inputs(execution.spec.inputs)
    scheduled = ScheduleResource.model_validate(next(d for d in docs
                                                     if d.kind == "Schedule").obj)
    assert scheduled.spec.concurrency_policy == "Forbid"
    assert not [d for d in docs if d.kind == "CronJob"], "the Schedule replaces the CronJob"
    cron = parse_schedule(scheduled.spec.schedule, scheduled.spec.time_zone)
    tick = cron.next_after(datetime(2026, 1, 1, tzinfo=UTC))
    workflows[scheduled.spec.workflow_ref.name].resolve_inputs(
        render_inputs(scheduled.spec.inputs, tick, cron.zone))


@pytest.mark.e2e
async def test_syncing_the_same_manifests_twice_starts_one_run(
    chart_sandbox: Sandbox, sandbox_kubectl: Kubectl
) -> None:
    """What Argo CD and Flux do on every sync: apply everything again."""
    await sandbox_kubectl.run("apply", "-f", str(EXAMPLE_REPO / "namespace.yaml"))
    paths = [str(EXAMPLE_REPO / "workflows"), str(EXAMPLE_REPO / "runs")]
    first = await sandbox_kubectl.run("apply", *[a for p in paths for a in ("-f", p)])
    assert "created" in first.stdout
    name = "nightly-report-backfill-2026-01-01"
    done = await chart_sandbox.wait_finished([("reports", name)], timeout=120)
    assert done[0]["status"]["phase"] == "Succeeded", done[0]["status"]

    again = await sandbox_kubectl.run("apply", *[a for p in paths for a in ("-f", p)])
    assert "created" not in again.stdout and "configured" not in again.stdout, again.stdout
    after = await chart_sandbox.get("executions", name, "reports")
    assert after is not None
    assert after["status"]["executionId"] == done[0]["status"]["executionId"]
    connection = await asyncpg.connect(chart_sandbox.database_url)
    try:
        runs = await connection.fetchval(
            "SELECT count(*) FROM executions WHERE workflow_name = $1",
            "reports/nightly-report")
    finally:
        await connection.close()
    assert runs == 1
