"""The Deployment that runs a pool's workers: a pure function of the pool and settings.

Follows the Kubernetes recommended labels (``app.kubernetes.io/*``) and pod security
"restricted" profile (non-root, no privilege escalation, all capabilities dropped,
RuntimeDefault seccomp, read-only root filesystem). Workers get no API access at all
(``automountServiceAccountToken: false``): they never talk to Kubernetes. The Secrets a
pool lists (``spec.secrets``) reach its workers as read-only secret volumes, one directory
per Secret under :data:`SECRETS_DIR` (``<dir>/<secret>/<key>``), named to the worker by
``CONVEYOR_SECRETS_DIR`` (:mod:`conveyor_engine.worker.mounts` reads them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..resources import API_VERSION, WorkerPoolSpec

POOL_LABEL = "conveyor.dev/pool"
COMPONENT = "worker"
METRICS_PORT = 9090
#: Where the pool's Secrets are mounted in a worker container (one directory per Secret).
SECRETS_DIR = "/var/run/secrets/conveyor"
#: Extra seconds Kubernetes waits after the worker's own grace period before SIGKILL.
KILL_MARGIN_SECONDS = 5


@dataclass(frozen=True, slots=True)
class Connection:
    """How workers reach Redis and PostgreSQL: a Secret (keys ``redis-url`` and
    ``database-url``) in the workers' namespace, or plain URLs (the sandbox)."""

    key_prefix: str
    secret: str | None = None
    redis_url: str | None = None
    database_url: str | None = None


def deployment_name(pool: str) -> str:
    """``conveyor-worker-<pool>``."""
    return f"conveyor-worker-{pool}"


def selector(pool: str) -> dict[str, str]:
    """Labels that select a pool's pods (also the Deployment's ``matchLabels``)."""
    return {"app.kubernetes.io/name": "conveyor", "app.kubernetes.io/component": COMPONENT,
            POOL_LABEL: pool}


def consumer_pod(consumer: str) -> str:
    """The pod a stream consumer belongs to: workers name consumers ``<pod>-<pid>-<hex>``."""
    return consumer.rsplit("-", 2)[0]


def _url_env(name: str, secret: str | None, key: str, literal: str | None) -> dict[str, Any]:
    if secret:
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
    return {"name": name, "value": literal or ""}


def secret_volumes(spec: WorkerPoolSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The pod's ``volumes`` and the worker container's ``volumeMounts`` for
    ``spec.secrets``: volume ``secret-<i>`` (a DNS label whatever the Secret's name) of
    Secret ``name`` with its ``optional`` (a missing optional Secret mounts empty; a missing
    required one keeps the pod from starting, ``CreateContainerConfigError``), mounted
    read-only at ``SECRETS_DIR/<name>``."""
    volumes, mounts = [], []
    for i, secret in enumerate(spec.secrets):
        volume = f"secret-{i}"
        volumes.append({"name": volume, "secret": {"secretName": secret.name,
                                                   "optional": secret.optional}})
        mounts.append({"name": volume, "mountPath": f"{SECRETS_DIR}/{secret.name}",
                       "readOnly": True})
    return volumes, mounts


def worker_deployment(
    *, pool: str, uid: str, spec: WorkerPoolSpec, namespace: str, image: str, replicas: int,
    connection: Connection,
) -> dict[str, Any]:
    """The full Deployment object for ``pool`` (owned by the WorkerPool with ``uid``).

    ``image`` is the operator's own image, used when the pool names none (``spec.image``:
    a team's image built ``FROM`` it with its task types installed). The pool's
    ``imagePullPolicy``, ``imagePullSecrets``, ``resources``, ``env`` (its entries replace
    ours of the same name), ``serviceAccountName``, ``nodeSelector`` and ``tolerations``
    reach the pod template as they are.
    """
    labels = {**selector(pool), "app.kubernetes.io/managed-by": "conveyor-operator",
              "app.kubernetes.io/part-of": "conveyor"}
    redis = spec.redis.url_secret_ref
    env = [
        {"name": "CONVEYOR_POOL", "value": pool},
        {"name": "CONVEYOR_CONCURRENCY", "value": str(spec.concurrency)},
        {"name": "CONVEYOR_KEY_PREFIX", "value": connection.key_prefix},
        {"name": "CONVEYOR_WORKER_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "CONVEYOR_METRICS_PORT", "value": str(METRICS_PORT)},
        {"name": "CONVEYOR_SHUTDOWN_GRACE_SECONDS", "value": str(spec.shutdown_grace_seconds)},
        {"name": "CONVEYOR_MIGRATE_ON_START", "value": "false"},
        {"name": "CONVEYOR_SECRETS_DIR", "value": SECRETS_DIR},
        _url_env("CONVEYOR_REDIS_URL", redis.name if redis else connection.secret,
                 redis.key if redis else "redis-url", connection.redis_url),
        _url_env("CONVEYOR_DATABASE_URL", connection.secret, "database-url",
                 connection.database_url),
    ]
    # The egress guard's ranges (spec.egress), read by the worker's settings.
    for setting, ranges in (("CONVEYOR_EGRESS_ALLOW", spec.egress.allow),
                            ("CONVEYOR_EGRESS_DENY", spec.egress.deny)):
        if ranges:
            env.append({"name": setting, "value": ",".join(ranges)})
    # The pool's own entries replace ours of the same name (a pool may bring its own
    # database credentials, for instance) instead of appearing twice.
    overridden = {item.get("name") for item in spec.env}
    env = [item for item in env if item["name"] not in overridden] + list(spec.env)
    container: dict[str, Any] = {
        "name": "worker",
        "image": spec.image or image,
        "command": ["conveyor-engine"],
        "env": env,
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "metrics"},
                           "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": "metrics"},
                          "periodSeconds": 20, "failureThreshold": 3},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}},
    }
    volumes, mounts = secret_volumes(spec)
    if mounts:
        container["volumeMounts"] = mounts
    if spec.image_pull_policy:
        container["imagePullPolicy"] = spec.image_pull_policy
    if spec.resources:
        container["resources"] = spec.resources
    pod_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": spec.shutdown_grace_seconds + KILL_MARGIN_SECONDS,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
    }
    if volumes:
        pod_spec["volumes"] = volumes
    if spec.service_account_name:
        # Only an identity (for image pulls, cloud workload identity): the token stays
        # unmounted above, so a named account gives workers no Kubernetes rights either.
        pod_spec["serviceAccountName"] = spec.service_account_name
    if spec.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": ref.name} for ref in spec.image_pull_secrets]
    if spec.node_selector:
        pod_spec["nodeSelector"] = spec.node_selector
    if spec.tolerations:
        pod_spec["tolerations"] = spec.tolerations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(pool),
            "namespace": namespace,
            "labels": labels,
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "WorkerPool", "name": pool,
                                 "uid": uid, "controller": True, "blockOwnerDeletion": True}],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector(pool)},
            # New pods first: a rollout never drops below the workers that run tasks.
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels,
                             "annotations": {"prometheus.io/scrape": "true",
                                             "prometheus.io/port": str(METRICS_PORT)}},
                "spec": pod_spec,
            },
        },
    }
