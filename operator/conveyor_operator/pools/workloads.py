"""API calls on a pool's workloads: its Deployment, its pods, and the Secret of its Redis."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from ..kube import TIMEOUT

MERGE = "application/merge-patch+json"
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


@dataclass(frozen=True, slots=True)
class Size:
    """A Deployment's wanted replicas (``spec.replicas``) and ready ones (its status), and
    its rollout (for whether its pool is settled: :mod:`.catalogue`)."""

    replicas: int
    ready: int
    current: int = 0
    updated: int = 0
    generation: int | None = None
    observed_generation: int | None = None


def api_message(exc: ApiException) -> str:
    """The API server's own message of a failed call (its Status ``message``), else the
    HTTP status and reason, for conditions a user reads."""
    try:
        message = json.loads(exc.body or "").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message) if message else f"{exc.status} {exc.reason}"


def namespace_missing(exc: ApiException) -> bool:
    """Whether a failed call on a namespaced object failed because its namespace does not
    exist (404 whose details name a namespace, as the API server answers a create there)."""
    if exc.status != 404:
        return False
    try:
        details = json.loads(exc.body or "").get("details") or {}
    except (ValueError, AttributeError):
        return False
    return details.get("kind") == "namespaces"


def _container(found: client.V1ContainerStatus) -> dict[str, Any]:
    """A container status in the shape :func:`..status.pods.pod_trouble` reads."""
    waiting = found.state.waiting if found.state else None
    last = found.last_state.terminated if found.last_state else None
    return {"name": found.name, "image": found.image,
            "waiting": None if waiting is None else {"reason": waiting.reason,
                                                     "message": waiting.message},
            "last_terminated": None if last is None else {
                "exitCode": last.exit_code, "reason": last.reason, "message": last.message}}


class Workloads:
    """Deployments, pods and secrets through one ``kubernetes_asyncio`` API client."""

    def __init__(self, api: client.ApiClient) -> None:
        self._apps = client.AppsV1Api(api)
        self._core = client.CoreV1Api(api)

    async def replicas(self, namespace: str, name: str) -> int | None:
        """``spec.replicas`` of a Deployment, or None when it does not exist."""
        found = await self.size(namespace, name)
        return None if found is None else found.replicas

    async def size(self, namespace: str, name: str) -> Size | None:
        """Wanted and ready replicas of a Deployment, or None when it does not exist."""
        try:
            found = await self._apps.read_namespaced_deployment(name, namespace,
                                                             _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        status = found.status
        ready = (status.ready_replicas if status else None) or 0
        return Size(found.spec.replicas or 0, ready,
                    current=(status.replicas if status else None) or 0,
                    updated=(status.updated_replicas if status else None) or 0,
                    generation=found.metadata.generation if found.metadata else None,
                    observed_generation=status.observed_generation if status else None)

    async def apply_deployment(self, body: dict[str, Any], *, keep_replicas: bool) -> None:
        """Create the Deployment, or merge-patch it; ``keep_replicas`` leaves the count alone."""
        meta = body["metadata"]
        try:
            await self._apps.create_namespaced_deployment(meta["namespace"], body,
                                                       _request_timeout=TIMEOUT)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise
        patch = {k: v for k, v in body.items() if k != "status"}
        if keep_replicas:
            patch = {**patch, "spec": {k: v for k, v in body["spec"].items() if k != "replicas"}}
        await self._apps.patch_namespaced_deployment(
            meta["name"], meta["namespace"], patch, _content_type=MERGE, _request_timeout=TIMEOUT)

    async def scale(self, namespace: str, name: str, replicas: int) -> None:
        """Set ``spec.replicas`` of a Deployment."""
        await self._apps.patch_namespaced_deployment(
            name, namespace, {"spec": {"replicas": replicas}}, _content_type=MERGE,
            _request_timeout=TIMEOUT)

    async def delete_deployment(self, namespace: str, name: str) -> None:
        """Delete a Deployment (a no-op when it is already gone)."""
        try:
            await self._apps.delete_namespaced_deployment(name, namespace,
                                                       _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def pods(self, namespace: str, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Pods matching ``labels``, each as ``{name, ready, cost, deleting, containers}``
        (cost None if unset; ``containers`` as :mod:`..status.pods` reads them)."""
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        found = await self._core.list_namespaced_pod(namespace, label_selector=selector,
                                                    _request_timeout=TIMEOUT)
        pods = []
        for pod in found.items:
            annotations = pod.metadata.annotations or {}
            conditions = (pod.status.conditions or []) if pod.status else []
            ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
            pods.append({"name": pod.metadata.name, "ready": ready,
                         "cost": annotations.get(DELETION_COST),
                         "deleting": pod.metadata.deletion_timestamp is not None,
                         "containers": [_container(c) for c in
                                        ((pod.status.container_statuses or [])
                                         if pod.status else [])]})
        return pods

    async def set_deletion_cost(self, namespace: str, pod: str, cost: int) -> None:
        """Annotate a pod with ``controller.kubernetes.io/pod-deletion-cost``.

        The ReplicaSet controller removes pods with the lowest cost first on scale-down
        (Kubernetes docs, "Pod deletion cost"), so busy workers are kept.
        """
        try:
            await self._core.patch_namespaced_pod(
                pod, namespace, {"metadata": {"annotations": {DELETION_COST: str(cost)}}},
                _content_type=MERGE, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:  # the pod went away meanwhile: nothing to protect
                raise

    async def secret_value(self, namespace: str, name: str, key: str) -> str:
        """One decoded value of a Secret; ``LookupError`` naming what is missing."""
        try:
            secret = await self._core.read_namespaced_secret(name, namespace,
                                                             _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                raise LookupError(f"secret {namespace}/{name} not found") from None
            raise
        data = secret.data or {}
        if key not in data:
            raise LookupError(f"secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(data[key]).decode()
