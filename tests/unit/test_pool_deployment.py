"""The worker Deployment a pool gets (pure rendering)."""

from __future__ import annotations

from conveyor_engine.settings import load_settings
from conveyor_operator.pools.deployment import (
    Connection,
    consumer_pod,
    deployment_name,
    worker_deployment,
)
from conveyor_operator.resources import WorkerPoolSpec


def render(**spec: object) -> dict:
    return worker_deployment(
        pool="fast", uid="u-1", spec=WorkerPoolSpec.model_validate(spec), namespace="conveyor",
        image="example/conveyor:1", replicas=2,
        connection=Connection(key_prefix="cv", secret="conveyor-connection"))


def env(deployment: dict) -> dict:
    return {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_deployment_is_owned_labelled_probed_and_locked_down() -> None:
    d = render(concurrency=8, shutdownGraceSeconds=40)
    assert d["metadata"]["name"] == deployment_name("fast") == "conveyor-worker-fast"
    assert d["metadata"]["ownerReferences"][0] == {
        "apiVersion": "conveyor.dev/v1alpha1", "kind": "WorkerPool", "name": "fast",
        "uid": "u-1", "controller": True, "blockOwnerDeletion": True}
    assert d["spec"]["selector"]["matchLabels"]["conveyor.dev/pool"] == "fast"
    pod = d["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert container["ports"][0]["name"] == "metrics"
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] == 45
    values = env(d)
    assert values["CONVEYOR_POOL"]["value"] == "fast"
    assert values["CONVEYOR_CONCURRENCY"]["value"] == "8"
    assert values["CONVEYOR_WORKER_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert values["CONVEYOR_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "conveyor-connection", "key": "redis-url"}


def test_pool_redis_secret_and_pod_settings_are_used() -> None:
    d = render(redis={"urlSecretRef": {"name": "fast-redis", "key": "url"}},
               nodeSelector={"pool": "fast"}, tolerations=[{"key": "x", "operator": "Exists"}],
               resources={"limits": {"cpu": "1"}}, serviceAccountName="runner",
               env=[{"name": "EXTRA", "value": "1"}], image="mine:2")
    pod = d["spec"]["template"]["spec"]
    assert env(d)["CONVEYOR_REDIS_URL"]["valueFrom"]["secretKeyRef"] == {
        "name": "fast-redis", "key": "url"}
    assert env(d)["EXTRA"] == {"name": "EXTRA", "value": "1"}
    assert pod["nodeSelector"] == {"pool": "fast"} and pod["serviceAccountName"] == "runner"
    assert pod["containers"][0]["image"] == "mine:2"
    assert pod["containers"][0]["resources"] == {"limits": {"cpu": "1"}}


def test_consumers_map_to_pods() -> None:
    assert consumer_pod("conveyor-worker-fast-7d9f-abcde-12-0a1b2c") == \
        "conveyor-worker-fast-7d9f-abcde"


def test_pool_env_replaces_ours_instead_of_repeating_it() -> None:
    d = render(env=[{"name": "CONVEYOR_DATABASE_URL", "value": "postgresql://other/db"}])
    names = [e["name"] for e in d["spec"]["template"]["spec"]["containers"][0]["env"]]
    assert names.count("CONVEYOR_DATABASE_URL") == 1
    assert env(d)["CONVEYOR_DATABASE_URL"] == {"name": "CONVEYOR_DATABASE_URL",
                                               "value": "postgresql://other/db"}


import pytest  # noqa: E402


@pytest.mark.parametrize(("secrets", "volumes", "mounts"), [
    ([], None, None),
    ([{"name": "payments"}],
     [{"name": "secret-0", "secret": {"secretName": "payments", "optional": False}}],
     [{"name": "secret-0", "mountPath": "/var/run/secrets/conveyor/payments",
       "readOnly": True}]),
    ([{"name": "payments"}, {"name": "maybe.there", "optional": True}],
     [{"name": "secret-0", "secret": {"secretName": "payments", "optional": False}},
      {"name": "secret-1", "secret": {"secretName": "maybe.there", "optional": True}}],
     [{"name": "secret-0", "mountPath": "/var/run/secrets/conveyor/payments",
       "readOnly": True},
      {"name": "secret-1", "mountPath": "/var/run/secrets/conveyor/maybe.there",
       "readOnly": True}]),
])
def test_pool_secrets_are_mounted_read_only_under_one_directory(secrets, volumes, mounts):
    d = render(secrets=secrets)
    pod = d["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod.get("volumes") == volumes
    assert container.get("volumeMounts") == mounts
    assert env(d)["CONVEYOR_SECRETS_DIR"]["value"] == "/var/run/secrets/conveyor"
    # Mounting Secrets never gives the workers API access.
    assert pod["automountServiceAccountToken"] is False


def test_own_image_pull_secrets_and_service_account_reach_the_pod_template() -> None:
    d = render(image="registry.example/acme/conveyor-tasks:0.1.0", imagePullPolicy="Always",
               imagePullSecrets=[{"name": "acme-registry"}, {"name": "mirror"}],
               serviceAccountName="acme-tasks",
               resources={"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}},
               env=[{"name": "ACME_REGION", "value": "eu"}])
    pod = d["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "registry.example/acme/conveyor-tasks:0.1.0"
    assert container["imagePullPolicy"] == "Always"
    assert pod["imagePullSecrets"] == [{"name": "acme-registry"}, {"name": "mirror"}]
    assert container["resources"] == {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}
    assert env(d)["ACME_REGION"] == {"name": "ACME_REGION", "value": "eu"}
    # A named account is an identity only: still no API token in the pod, so no rights.
    assert pod["serviceAccountName"] == "acme-tasks"
    assert pod["automountServiceAccountToken"] is False


def test_without_pool_settings_the_operator_image_and_no_pull_secrets() -> None:
    pod = render()["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "example/conveyor:1"
    assert "imagePullSecrets" not in pod and "serviceAccountName" not in pod
    assert "imagePullPolicy" not in pod["containers"][0]


def test_egress_ranges_reach_the_workers_settings() -> None:
    d = render(egress={"allow": ["169.254.170.2/32", "fd00:ec2::/32"], "deny": ["10.0.0.0/8"]})
    assert env(d)["CONVEYOR_EGRESS_ALLOW"] == {
        "name": "CONVEYOR_EGRESS_ALLOW", "value": "169.254.170.2/32,fd00:ec2::/32"}
    assert env(d)["CONVEYOR_EGRESS_DENY"] == {"name": "CONVEYOR_EGRESS_DENY",
                                              "value": "10.0.0.0/8"}
    # what the worker reads back is the same policy
    settings = load_settings(egress_allow=env(d)["CONVEYOR_EGRESS_ALLOW"]["value"],
                             egress_deny=env(d)["CONVEYOR_EGRESS_DENY"]["value"])
    assert settings.egress_policy().allow[1].with_prefixlen == "fd00:ec2::/32"
    assert "CONVEYOR_EGRESS_ALLOW" not in env(render())
