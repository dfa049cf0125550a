"""The chart renders, lints and validates with every value set, and keeps its promises:
pod security, one operator, least-privilege accounts, secrets only by reference."""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.chart.helmchart import (
    CHART,
    FOREIGN_KINDS,
    KUBE_VERSIONS,
    NAMESPACE,
    VALUE_SETS,
    NoSchema,
    Rendered,
    chart,
    notes,
    render,
    validate,
)

SETS = sorted(VALUE_SETS)


def pod_specs(docs: list[Rendered]) -> list[tuple[Rendered, dict[str, Any]]]:
    """Every pod template of every workload."""
    found = []
    for doc in docs:
        if doc.kind in ("Deployment", "StatefulSet", "Job"):
            found.append((doc, doc.obj["spec"]["template"]["spec"]))
    return found


def only(docs: list[Rendered], kind: str, name: str) -> Rendered:
    matches = [d for d in docs if d.kind == kind and d.name == name]
    assert len(matches) == 1, f"{kind}/{name}: {[str(d) for d in docs]}"
    return matches[0]


@pytest.mark.parametrize("values_set", SETS)
def test_values_pass_the_schema_and_lint_is_clean(values_set: str) -> None:
    values = VALUE_SETS[values_set]
    chart().validate_schema(values)
    for kube in KUBE_VERSIONS:
        report = helm.lint(str(CHART), values, strict=True, namespace=NAMESPACE,
                           kube_version=f"v{kube}")
        problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
        assert not problems, problems


@pytest.mark.parametrize("values_set", SETS)
@pytest.mark.parametrize("kube", KUBE_VERSIONS)
def test_every_object_fits_its_schema(values_set: str, kube: str) -> None:
    docs = render(VALUE_SETS[values_set])
    assert docs
    for doc in docs:
        try:
            validate(doc, kube)
        except NoSchema:
            assert doc.kind in FOREIGN_KINDS, f"no schema for {doc}"
            assert doc.obj["apiVersion"] == "monitoring.coreos.com/v1"


@pytest.mark.parametrize("values_set", SETS)
def test_pods_follow_the_restricted_pod_security_standard(values_set: str) -> None:
    for doc, spec in pod_specs(render(VALUE_SETS[values_set])):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, doc
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, doc
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, doc
            assert sc["readOnlyRootFilesystem"] is True, doc
            assert sc["capabilities"]["drop"] == ["ALL"], doc
            assert "add" not in sc["capabilities"], doc
            assert not sc.get("privileged"), doc
            resources = container["resources"]
            assert resources["requests"]["cpu"] and resources["requests"]["memory"], doc
            assert resources["limits"]["memory"], doc


@pytest.mark.parametrize("values_set", SETS)
def test_one_operator_with_probes_and_metrics(values_set: str) -> None:
    docs = render(VALUE_SETS[values_set])
    operator = only(docs, "Deployment", "conveyor-operator").obj
    assert operator["spec"]["replicas"] == 1
    # A rolling update is safe: the Lease keeps the new pod a standby until the old one
    # releases it (tests/e2e/sandbox/test_operator_leader.py).
    assert operator["spec"]["strategy"] == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    container = operator["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["conveyor-operator", "run"]
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"] == {"path": path, "port": "health"}
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    env = {e["name"]: e for e in container["env"]}
    assert env["CONVEYOR_METRICS_PORT"]["value"] == "8080"
    assert env["CONVEYOR_HEALTH_PORT"]["value"] == "8081"
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    service = only(docs, "Service", "conveyor-operator-metrics").obj
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


@pytest.mark.parametrize(("values", "replicas"), [
    ({}, 1),
    ({"operator": {"replicas": 2}}, 2),   # a standby ready to take the Lease
    ({"operator": {"replicas": 3}}, 3),
    # Leader election stays on by default, so extraEnv without it is no obstacle.
    ({"operator": {"replicas": 2, "extraEnv": [{"name": "CONVEYOR_LEADER_ELECTION",
                                                "value": "true"}]}}, 2),
    ({"operator": {"extraEnv": [{"name": "CONVEYOR_LEADER_ELECTION", "value": "false"}]}}, 1),
])
def test_operator_replicas(values: dict, replicas: int) -> None:
    chart().validate_schema(values)
    docs = render(values)
    operator = only(docs, "Deployment", "conveyor-operator").obj
    assert operator["spec"]["replicas"] == replicas
    # Whatever the count, rolling updates never take the last ready pod away.
    assert operator["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1,
                                                             "maxUnavailable": 0}
    validate(only(docs, "Deployment", "conveyor-operator"), KUBE_VERSIONS[-1])


@pytest.mark.parametrize("values_set", SETS)
def test_secrets_are_only_referenced_never_inlined(values_set: str) -> None:
    """Connection URLs and passwords come from Secrets; host-mode URLs hold $(VAR) only."""
    for doc, spec in pod_specs(render(VALUE_SETS[values_set])):
        for container in spec["containers"]:
            for env in container.get("env", []):
                value = env.get("value", "")
                if env["name"] in ("CONVEYOR_REDIS_URL", "CONVEYOR_DATABASE_URL"):
                    assert "valueFrom" in env or "@" not in value or "$(" in value, (doc, env)
                if "PASSWORD" in env["name"] or env["name"].endswith("_CA_CERT"):
                    assert "secretKeyRef" in env.get("valueFrom", {}), (doc, env)


def test_workers_get_no_kubernetes_access() -> None:
    docs = render({})
    worker_sa = only(docs, "ServiceAccount", "conveyor-worker").obj
    assert worker_sa["automountServiceAccountToken"] is False
    for doc in docs:
        for subject in doc.obj.get("subjects", []):
            assert subject["name"] != "conveyor-worker", f"{doc} binds the worker account"
    pool = only(docs, "WorkerPool", "default").obj
    assert pool["spec"]["serviceAccountName"] == "conveyor-worker"
    assert pool["spec"]["namespace"] == NAMESPACE
    assert "namespace" not in pool["metadata"]  # WorkerPools are cluster-scoped


def test_default_pool_runs_a_team_image_with_its_pull_secrets_secrets_and_account() -> None:
    docs = render(VALUE_SETS["team-image"])
    spec = only(docs, "WorkerPool", "default").obj["spec"]
    assert spec["image"] == "registry.example/acme/conveyor-example-tasks:0.1.0"
    assert spec["imagePullSecrets"] == [{"name": "release-registry"}, {"name": "acme-registry"}]
    assert spec["secrets"] == [{"name": "payments"}, {"name": "ledger.api"}]
    assert spec["serviceAccountName"] == "acme-tasks"
    # Helm merges maps: the memory request of the defaults stays.
    assert spec["resources"] == {"requests": {"cpu": "1", "memory": "256Mi"},
                                 "limits": {"memory": "2Gi"}}
    assert {"name": "ACME_REGION", "value": "eu"} in spec["env"]
    # The chart binds no role to any account the pool names.
    for doc in docs:
        for subject in doc.obj.get("subjects", []):
            assert subject["name"] != "acme-tasks", f"{doc} binds the pool's account"


def test_default_pool_without_its_own_settings_uses_the_chart_image_and_account() -> None:
    spec = only(render({}), "WorkerPool", "default").obj["spec"]
    assert spec["image"].startswith("ghcr.io/conveyor-dev/conveyor:")
    assert spec["serviceAccountName"] == "conveyor-worker"
    assert "imagePullSecrets" not in spec and "secrets" not in spec


def test_default_pool_gets_its_connection_from_the_operator_when_one_secret_has_both() -> None:
    operator = only(render({}), "Deployment", "conveyor-operator").obj
    env = {e["name"]: e for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CONVEYOR_WORKER_CONNECTION_SECRET"]["value"] == "conveyor-connection"
    assert env["CONVEYOR_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "conveyor-connection", "key": "redis-url"}
    assert "env" not in only(render({}), "WorkerPool", "default").obj["spec"]


def test_host_mode_composes_urls_from_secret_parts() -> None:
    docs = render(VALUE_SETS["host-mode"])
    pool_env = {e["name"]: e for e in only(docs, "WorkerPool", "default").obj["spec"]["env"]}
    assert pool_env["CONVEYOR_REDIS_URL"]["value"] == "redis://redis.example.internal:6379/0"
    assert pool_env["CONVEYOR_DATABASE_URL"]["value"] == (
        "postgresql://pg.example.internal:5432/conveyor?sslmode=verify-full")
    assert pool_env["PGUSER"]["valueFrom"]["secretKeyRef"] == {"name": "pg-user",
                                                              "key": "database-username"}
    operator = only(docs, "Deployment", "conveyor-operator").obj
    env = [e["name"] for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert "CONVEYOR_WORKER_CONNECTION_SECRET" not in env
    # $(VAR) expansion only sees variables defined earlier in the list.
    external = {e["name"]: e for e in only(render(VALUE_SETS["external-secrets"]), "Deployment",
                                           "conveyor-operator").obj["spec"]["template"]["spec"]
                ["containers"][0]["env"]}
    assert external["CONVEYOR_REDIS_URL"]["value"] == (
        "rediss://:$(CONVEYOR_REDIS_PASSWORD)@redis.data.svc:6380/0")
    names = list(external)
    assert names.index("CONVEYOR_REDIS_PASSWORD") < names.index("CONVEYOR_REDIS_URL")
    assert external["CONVEYOR_REDIS_CA_CERT"]["valueFrom"]["secretKeyRef"]["name"] == "redis-ca"
    assert external["CONVEYOR_DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "pg-app", "key": "uri"}


def test_in_chart_databases_are_off_by_default_and_labelled_evaluation_only() -> None:
    assert not [d for d in render({}) if d.obj["metadata"].get("labels", {}).get(
        "conveyor.dev/evaluation-only")]
    docs = render(VALUE_SETS["in-chart-databases"])
    evaluation = [d for d in docs
                  if d.obj["metadata"].get("labels", {}).get("conveyor.dev/evaluation-only")]
    assert sorted(str(d.kind) + "/" + d.name for d in evaluation) == [
        "Deployment/conveyor-postgresql", "Deployment/conveyor-redis", "Secret/conveyor-evaluation",
        "Service/conveyor-postgresql", "Service/conveyor-redis"]
    assert "EVALUATION ONLY" in notes(VALUE_SETS["in-chart-databases"])
    operator = only(docs, "Deployment", "conveyor-operator").obj
    env = {e["name"]: e for e in operator["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CONVEYOR_WORKER_CONNECTION_SECRET"]["value"] == "conveyor-evaluation"


def test_monitors_only_when_asked() -> None:
    assert not [d for d in render({}) if d.kind in FOREIGN_KINDS]
    docs = render(VALUE_SETS["service-monitor"])
    monitor = only(docs, "ServiceMonitor", "conveyor-operator").obj
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    pods = only(docs, "PodMonitor", "conveyor-workers").obj
    assert pods["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "worker"


def test_hooks_upgrade_crds_and_release_finalizers() -> None:
    docs = render({})
    jobs = {d.name: d for d in docs if d.kind == "Job"}
    crds = jobs["conveyor-crds"].obj
    assert crds["metadata"]["annotations"]["helm.sh/hook"] == "pre-upgrade"
    assert crds["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "conveyor-operator", "crds", "apply"]
    uninstall = jobs["conveyor-uninstall"].obj
    assert uninstall["metadata"]["annotations"]["helm.sh/hook"] == "pre-delete"
    assert uninstall["spec"]["template"]["spec"]["containers"][0]["command"] == [
        "conveyor-operator", "release-finalizers", "--operator-deployment", "conveyor-operator"]
    # Hook accounts, roles and bindings exist before their Job runs (lower weight).
    for doc in docs:
        if doc.is_hook and doc.kind != "Job":
            assert doc.obj["metadata"]["annotations"]["helm.sh/hook-weight"] == "-10", doc
    assert not [d for d in render(VALUE_SETS["one-namespace"]) if d.kind == "Job"]


def test_crd_upgrade_hook_may_touch_only_conveyor_crds() -> None:
    role = only(render({}), "ClusterRole", "conveyor-crds").obj
    named = [r for r in role["rules"] if "resourceNames" in r]
    assert named and sorted(named[0]["resourceNames"]) == [
        "executions.conveyor.dev", "schedules.conveyor.dev", "workerpools.conveyor.dev",
        "workflows.conveyor.dev"]
    assert sorted(named[0]["verbs"]) == ["get", "update"]
    unnamed = [r for r in role["rules"] if "resourceNames" not in r]
    assert [r["verbs"] for r in unnamed] == [["create"]]  # create cannot be limited by name


@pytest.mark.parametrize("values_set", SETS)
def test_notes_say_what_to_do_next(values_set: str) -> None:
    text = notes(VALUE_SETS[values_set])
    assert "rollout status deployment/conveyor-operator" in text
    assert "kubectl wait --for=condition=Ready execution/hello-1" in text
    assert "${{ inputs.who }}" in text


def test_every_object_carries_the_recommended_labels() -> None:
    for doc in render(VALUE_SETS["in-chart-databases"]):
        labels = doc.obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "conveyor", doc
        assert labels.get("app.kubernetes.io/instance") == "conveyor", doc
