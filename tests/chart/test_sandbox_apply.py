"""The rendered chart applies into the sandbox's emulated Kubernetes API with kubectl.

Everything the emulation serves is applied: the CRDs from the chart's crds/ first (as Helm
does), then every template, hooks included. Kinds of other projects' CRDs (the Prometheus
Operator's ServiceMonitor and PodMonitor) do not fit and are left out. Applying twice changes
nothing, which is what Argo CD and Flux do on every sync.
"""

from __future__ import annotations

import pytest
import yaml

from tests.chart.helmchart import FOREIGN_KINDS, NAMESPACE, VALUE_SETS, chart, render
from tests.e2e.kubectl import Kubectl

pytestmark = pytest.mark.e2e


def namespaces_of(docs: list) -> list[str]:
    found = {NAMESPACE}
    for doc in docs:
        if doc.obj["metadata"].get("namespace"):
            found.add(doc.obj["metadata"]["namespace"])
    return sorted(found)


@pytest.mark.parametrize("values_set", ["defaults", "in-chart-databases", "one-namespace",
                                        "service-monitor"])
async def test_rendered_manifests_apply_into_the_emulated_api(
    kubectl: Kubectl, values_set: str
) -> None:
    crds = "---\n".join(c["data"] for c in chart().crds)
    await kubectl.run("apply", "-f", "-", stdin=crds)
    docs = [d for d in render(VALUE_SETS[values_set]) if d.kind not in FOREIGN_KINDS]
    for namespace in namespaces_of(docs):
        await kubectl.run("create", "namespace", namespace)
    stream = yaml.safe_dump_all([d.obj for d in docs], sort_keys=False)

    first = await kubectl.run("apply", "-f", "-", stdin=stream)
    for doc in docs:
        assert f"{doc.kind.lower()}" in first.stdout.lower(), first.stdout
        assert f"/{doc.name} created" in first.stdout, (str(doc), first.stdout)

    again = await kubectl.run("apply", "-f", "-", stdin=stream)
    assert "created" not in again.stdout and "configured" not in again.stdout, again.stdout

    listed = await kubectl.run("get", "deployments,serviceaccounts,services,roles,rolebindings",
                               "-n", NAMESPACE, "-o", "name")
    for doc in docs:
        if doc.obj["metadata"].get("namespace") == NAMESPACE and doc.kind in (
                "Deployment", "ServiceAccount", "Service", "Role", "RoleBinding"):
            assert f"/{doc.name}" in listed.stdout, (str(doc), listed.stdout)
    if VALUE_SETS[values_set].get("defaultPool", {}).get("enabled", True):
        pool = await kubectl.run("get", "workerpool", "default", "-o", "yaml")
        assert yaml.safe_load(pool.stdout)["spec"]["namespace"] == NAMESPACE
