"""Releasing the operator's finalizers before an uninstall (the chart's pre-delete hook).

Order matters: first the operator is scaled to zero and awaited, so it cannot add a
finalizer back; then ``conveyor.dev/*`` finalizers are removed from every Workflow, Execution
and WorkerPool, so deleting them (or their namespaces, or the CRDs) never hangs. Running
executions are not cancelled; their history stays in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .kube import TIMEOUT
from .resources import EXECUTIONS, GROUP, VERSION, WORKERPOOLS, WORKFLOWS

MERGE = "application/merge-patch+json"


def kept_finalizers(finalizers: list[str] | None) -> list[str]:
    """``finalizers`` without Conveyor's own (``conveyor.dev/...``)."""
    return [f for f in finalizers or [] if not f.startswith(f"{GROUP}/")]


async def stop_operator(api: client.ApiClient, namespace: str, deployment: str,
                        timeout: float = 120.0, say: Callable[[str], None] = print) -> None:
    """Scale the operator's Deployment to zero and wait until no pod of it runs.

    Raises ``TimeoutError`` after ``timeout`` seconds; a missing Deployment is fine.
    """
    apps = client.AppsV1Api(api)
    try:
        await apps.patch_namespaced_deployment(deployment, namespace, {"spec": {"replicas": 0}},
                                               _content_type=MERGE, _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            say(f"deployment {namespace}/{deployment} not found; nothing to stop")
            return
        raise
    deadline = time.monotonic() + timeout
    while True:
        found = await apps.read_namespaced_deployment(deployment, namespace,
                                                      _request_timeout=TIMEOUT)
        if not (found.status and found.status.replicas):
            say(f"operator {namespace}/{deployment} stopped")
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"operator {namespace}/{deployment} still has "
                               f"{found.status.replicas} pod(s) after {timeout:.0f}s")
        await asyncio.sleep(1.0)


async def release_finalizers(api: client.ApiClient, namespace: str | None = None,
                             say: Callable[[str], None] = print) -> int:
    """Remove Conveyor's finalizers from all its objects (in ``namespace`` if given).

    Returns how many objects were changed. RBAC: list and patch on the three resources.
    """
    custom = client.CustomObjectsApi(api)
    changed = 0
    for plural in (WORKFLOWS, EXECUTIONS, WORKERPOOLS):
        if plural != WORKERPOOLS and namespace:
            listing = await custom.list_namespaced_custom_object(
                GROUP, VERSION, namespace, plural, _request_timeout=TIMEOUT)
        else:
            listing = await custom.list_cluster_custom_object(
                GROUP, VERSION, plural, _request_timeout=TIMEOUT)
        for item in listing.get("items", []):
            changed += await _release(custom, plural, item, say)
    return changed


async def _release(custom: client.CustomObjectsApi, plural: str, item: dict[str, Any],
                   say: Callable[[str], None]) -> int:
    meta = item["metadata"]
    finalizers = meta.get("finalizers") or []
    kept = kept_finalizers(finalizers)
    if kept == finalizers:
        return 0
    patch = {"metadata": {"finalizers": kept or None}}
    try:
        if meta.get("namespace"):
            await custom.patch_namespaced_custom_object(
                GROUP, VERSION, meta["namespace"], plural, meta["name"], patch,
                _content_type=MERGE, _request_timeout=TIMEOUT)
        else:
            await custom.patch_cluster_custom_object(
                GROUP, VERSION, plural, meta["name"], patch, _content_type=MERGE,
                _request_timeout=TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            return 0
        raise
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    say(f"released {plural}/{where}{meta['name']}")
    return 1
