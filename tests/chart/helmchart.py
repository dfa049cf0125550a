"""Render the chart offline through the Helm SDK (PyPI ``helm-python-sdk``) and validate it.

``render(values)`` returns :class:`Rendered` documents (template path + parsed object) of a
release named ``conveyor`` in namespace ``conveyor-system``, hooks included (Helm renders
them as templates too). ``VALUE_SETS`` are the configurations every test goes through.
``validate(doc)`` checks one object against the Kubernetes JSON schemas
(``kubernetes-validate``) or, for ``conveyor.dev`` kinds, against the CRDs in ``crds/``
(``tests.support.manifests``, which also refuses unknown fields).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import jsonschema
import kubernetes_validate
import yaml

from tests.support import manifests

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "conveyor"
CRDS = ROOT / "crds"
RELEASE = "conveyor"
NAMESPACE = "conveyor-system"
#: Kinds whose schema lives in CRDs we do not ship (the Prometheus Operator's).
FOREIGN_KINDS = frozenset({"ServiceMonitor", "PodMonitor"})
#: The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schemas.
KUBE_VERSIONS = ("1.27.0", "1.32.0")

VALUE_SETS: dict[str, dict[str, Any]] = {
    # One Secret "conveyor-connection" with keys redis-url and database-url.
    "defaults": {},
    # Secrets of the user's own naming, host mode with passwords, TLS with private CAs.
    "external-secrets": {
        "redis": {"existingSecret": "", "host": "redis.data.svc", "port": 6380,
                  "passwordSecret": "redis-auth", "passwordKey": "password",
                  "tls": {"enabled": True, "caSecret": "redis-ca"}},
        "postgresql": {"existingSecret": "pg-app", "urlKey": "uri",
                       "tls": {"caSecret": "pg-ca", "caKey": "root.crt"}},
    },
    "host-mode": {
        "redis": {"existingSecret": "", "host": "redis.example.internal"},
        "postgresql": {"existingSecret": "", "host": "pg.example.internal",
                       "usernameSecret": "pg-user", "passwordSecret": "pg-user",
                       "sslMode": "verify-full"},
    },
    "in-chart-databases": {
        "evaluation": {"redis": {"enabled": True}, "postgresql": {"enabled": True}},
    },
    "service-monitor": {
        "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"}}},
    },
    # The default pool on a team's own image, with its pull secret, mounted Secrets and
    # account (docs/task-types.md).
    "team-image": {
        "imagePullSecrets": [{"name": "release-registry"}],
        "defaultPool": {"image": "registry.example/acme/conveyor-example-tasks:0.1.0",
                        "imagePullSecrets": [{"name": "acme-registry"}],
                        "secrets": ["payments", "ledger.api"],
                        "serviceAccountName": "acme-tasks",
                        "resources": {"requests": {"cpu": "1"}, "limits": {"memory": "2Gi"}},
                        "extraEnv": [{"name": "ACME_REGION", "value": "eu"}]},
    },
    # What scripts/kind-e2e.sh installs with.
    "kind": yaml.safe_load((CHART / "ci" / "kind-values.yaml").read_text()),
    "one-namespace": {
        "operator": {"watchNamespace": "workflows", "extraWorkerNamespaces": ["batch"]},
        "defaultPool": {"enabled": False},
        "crds": {"upgradeJob": {"enabled": False}},
        "uninstall": {"releaseFinalizers": False},
    },
}


@dataclass(frozen=True)
class Rendered:
    """One object of a rendered chart and the template it came from."""

    template: str
    obj: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.obj.get("kind", ""))

    @property
    def name(self) -> str:
        return str(self.obj.get("metadata", {}).get("name", ""))

    @property
    def is_hook(self) -> bool:
        return "helm.sh/hook" in (self.obj.get("metadata", {}).get("annotations") or {})

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} ({self.template})"


@functools.cache
def chart() -> helm.Chart:
    """The chart, loaded once per session (charts are immutable)."""
    return helm.Chart.load(str(CHART))


def render_raw(values: dict[str, Any] | None = None,
               namespace: str = NAMESPACE) -> dict[str, str]:
    """Template path → rendered text; raises ``helm.HelmError`` like ``helm install`` would.

    The values are checked against values.schema.json first, as ``helm install`` does.
    """
    chart().validate_schema(values or {})
    return chart().render(values or {}, name=RELEASE, namespace=namespace, is_install=True)


def render(values: dict[str, Any] | None = None, namespace: str = NAMESPACE) -> list[Rendered]:
    """Every object of the rendered chart (NOTES.txt and empty documents left out)."""
    found = []
    for template, text in sorted(render_raw(values, namespace).items()):
        if template.endswith("NOTES.txt"):
            continue
        for obj in yaml.safe_load_all(text):
            if obj:
                found.append(Rendered(template, obj))
    return found


def notes(values: dict[str, Any] | None = None) -> str:
    """The rendered NOTES.txt."""
    rendered = render_raw(values)
    return next(text for path, text in rendered.items() if path.endswith("NOTES.txt"))


@functools.cache
def repo_crds() -> dict[str, dict[str, Any]]:
    """CRD name → CRD object, from the repository's crds/ (the single source)."""
    loaded = (yaml.safe_load(path.read_text()) for path in sorted(CRDS.glob("*.yaml")))
    return {crd["metadata"]["name"]: crd for crd in loaded}


class NoSchema(LookupError):
    """Neither Kubernetes nor crds/ has a schema for this kind (e.g. a ServiceMonitor)."""


def validate(doc: Rendered, kube_version: str = KUBE_VERSIONS[-1]) -> None:
    """Raise ``jsonschema.ValidationError`` (with the path) if ``doc`` does not fit its schema.

    Built-in kinds use kubernetes-validate's strict schemas (unknown fields are errors).
    """
    obj = json.loads(json.dumps(doc.obj))  # YAML dates etc. become JSON types, as on the wire
    if obj.get("apiVersion", "").startswith("conveyor.dev/"):
        if obj["kind"] not in manifests.crds():
            raise NoSchema(f"no CRD in crds/ for {doc}")
        # Stricter than the API server: unknown fields are errors, not silently pruned. The
        # API server validates metadata itself (labels etc.); the CRD only constrains name.
        bare = {**obj, "metadata": {"name": obj["metadata"]["name"]}}
        errors = manifests.schema_errors(obj["kind"], bare)
        if errors:
            raise jsonschema.ValidationError(f"{doc}: {errors}")
        return
    try:
        kubernetes_validate.validate(obj, kube_version, strict=True)
    except kubernetes_validate.utils.SchemaNotFoundError as exc:
        raise NoSchema(exc.message) from None
