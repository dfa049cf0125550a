"""The chart's CRDs are the repository's crds/, and the operator's CRD check and CRD apply
work against an API server (the sandbox's emulation)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml
from kubernetes_asyncio import client, config

from conveyor_operator.crdcheck import (
    apply_crds,
    check_installed_crds,
    crd_version,
    expected_crds,
)
from conveyor_sandbox.apiserver import SandboxApiServer
from tests.chart.helmchart import CHART, CRDS, ROOT, chart, render


def test_chart_crds_are_byte_copies_of_crds_dir() -> None:
    """Helm cannot read outside the chart, so the chart carries copies (charts/sync-crds)."""
    in_chart = {Path(c["filename"]).name: c["data"] for c in chart().crds}
    in_repo = {path.name: path.read_text() for path in sorted(CRDS.glob("*.yaml"))}
    assert sorted(in_chart) == sorted(in_repo), "run charts/sync-crds"
    for name, text in in_repo.items():
        assert in_chart[name] == text, f"charts/conveyor/crds/{name} differs: run charts/sync-crds"


def test_sync_script_check_mode_agrees() -> None:
    done = subprocess.run([str(ROOT / "charts" / "sync-crds"), "--check"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_every_crd_has_a_version_label_and_no_template_renders_a_crd() -> None:
    for path in sorted((CHART / "crds").glob("*.yaml")):
        assert yaml.safe_load(path.read_text())["metadata"]["labels"]["conveyor.dev/crd-version"]
    # CRDs live in crds/ only (installed before templates, so the default WorkerPool finds
    # its kind); a CRD rendered as a template too would fight with it.
    assert not [d for d in render({}) if d.kind == "CustomResourceDefinition"]


async def _client(api: SandboxApiServer, tmp_path: Path) -> client.ApiClient:
    configuration = client.Configuration()
    await config.load_kube_config(config_file=str(api.write_kubeconfig(tmp_path / "kc")),
                                  client_configuration=configuration)
    return client.ApiClient(configuration)


async def test_check_and_apply_against_an_api_server(tmp_path: Path) -> None:
    expected = expected_crds()
    older = yaml.safe_load(yaml.safe_dump(expected[0]))
    older["metadata"]["labels"]["conveyor.dev/crd-version"] = "0"
    async with SandboxApiServer() as api:
        api_client = await _client(api, tmp_path)
        try:
            missing = await check_installed_crds(api_client, expected)
            assert len(missing) == len(expected)
            assert all("is not installed" in m for m in missing)

            await apply_crds(api_client, [older])
            problems = await check_installed_crds(api_client, expected)
            name, wanted = older["metadata"]["name"], crd_version(expected[0])
            assert problems[0].startswith(
                f"CRD {name} is version 0, this operator needs version {wanted}")

            done = await apply_crds(api_client, expected)
            assert done[0].startswith(f"replaced {name} (version 0 -> ")
            assert all(line.startswith("created") for line in done[1:])
            # What the server stores round-trips: same label, versions and schema hash.
            assert await check_installed_crds(api_client, expected) == []
        finally:
            await api_client.close()
        assert not api.failures


#: Short names claimed by the CRDs users most often install beside Conveyor, and by the
#: built-in kinds (``kubectl api-resources``). Sources: Argo Workflows' CRDs
#: (manifests/base/crds: wf, cwf, cwft, wftmpl, wfeventbinding, wfts, wftr, wfat), Argo CD
#: (app, apps, appproj, appset, appsets), Tekton Pipelines (no short names except tr/pr in
#: older releases, taken here to be safe), Argo Events (eb, es, sn), KEDA (so, sj, ta, cta),
#: and Kubernetes v1.32's built-ins.
TAKEN_SHORT_NAMES = {
    "wf", "cwf", "cwft", "wftmpl", "wfeventbinding", "wfts", "wftr", "wfat",
    "app", "apps", "appproj", "appset", "appsets", "tr", "pr", "eb", "es", "sn",
    "so", "sj", "ta", "cta",
    "cs", "cm", "ep", "ev", "limits", "ns", "no", "pvc", "pv", "po", "rc", "quota", "sa",
    "svc", "crd", "crds", "ds", "deploy", "rs", "sts", "hpa", "cj", "csr", "ing", "netpol",
    "pdb", "pc", "sc",
}


def test_short_names_avoid_the_best_known_crds_and_builtins() -> None:
    """``cwf`` was Argo Workflows' CronWorkflow short name; kubectl cannot tell them apart."""
    names = {yaml.safe_load(p.read_text())["spec"]["names"]["kind"]:
             yaml.safe_load(p.read_text())["spec"]["names"]["shortNames"]
             for p in sorted(CRDS.glob("*.yaml"))}
    assert {kind: short[0] for kind, short in names.items()} == {
        "Workflow": "cvwf", "Execution": "cvex", "WorkerPool": "cvwp", "Schedule": "cvsch"}
    every = [name for short in names.values() for name in short]
    assert len(every) == len(set(every)) and not set(every) & TAKEN_SHORT_NAMES
