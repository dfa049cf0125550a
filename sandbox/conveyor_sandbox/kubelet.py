"""Runs the emulated cluster's worker Deployments as local processes.

The sandbox has no nodes, so this plays the ReplicaSet controller and the kubelet for
Deployments labelled ``app.kubernetes.io/component=worker``: it keeps ``spec.replicas``
engine worker processes per Deployment, each with a Pod object in the API (Ready once the
worker serves), and on scale-down stops the pods with the lowest
``controller.kubernetes.io/pod-deletion-cost`` first, youngest first among equals, as the
ReplicaSet controller does. A stopping pod gets SIGTERM and the template's
``terminationGracePeriodSeconds`` before SIGKILL. The image is ignored: pods run the
code installed beside the sandbox (``python -m conveyor_engine`` with this interpreter).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .processes import ManagedProcess

log = logging.getLogger(__name__)
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SELECTOR = "app.kubernetes.io/component=worker"
_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(slots=True)
class _Pod:
    name: str
    namespace: str
    process: ManagedProcess
    started: float
    ready: bool = False
    stopping: bool = False


@dataclass(slots=True)
class _Deployment:
    pods: list[_Pod] = field(default_factory=list)


class Kubelet:
    """``await kubelet.run()`` until cancelled; :meth:`stop_all` ends every pod."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str, workdir: Path,
                 extra_env: dict[str, str], interval: float = 0.2) -> None:
        self._session = session
        self._api = api_url.rstrip("/")
        self._workdir = workdir
        self._extra_env = extra_env
        self._interval = interval
        self._deployments: dict[tuple[str, str], _Deployment] = {}
        self._stopping: set[asyncio.Task] = set()

    @property
    def processes(self) -> list[ManagedProcess]:
        """Every pod process currently known (running or stopping)."""
        return [p.process for d in self._deployments.values() for p in d.pods]

    def pods(self, namespace: str, deployment: str) -> list[str]:
        """Names of the running (not stopping) pods of one Deployment."""
        found = self._deployments.get((namespace, deployment))
        return [p.name for p in found.pods if not p.stopping] if found else []

    async def run(self) -> None:
        """Reconcile every ``interval`` seconds until cancelled."""
        while True:
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("sandbox kubelet pass failed")
            await asyncio.sleep(self._interval)

    async def reconcile(self) -> None:
        """One pass over all worker Deployments."""
        async with self._session.get(f"{self._api}/apis/apps/v1/deployments",
                                     params={"labelSelector": SELECTOR}) as response:
            listing = await response.json()
        seen = set()
        for deployment in listing.get("items", []):
            meta = deployment["metadata"]
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            await self._reconcile_one(key, deployment)
        for key in set(self._deployments) - seen:  # deleted Deployments lose their pods
            for pod in self._deployments[key].pods:
                self._stop(pod, grace=30)
            self._deployments.pop(key)

    async def _reconcile_one(self, key: tuple[str, str], deployment: dict[str, Any]) -> None:
        state = self._deployments.setdefault(key, _Deployment())
        for pod in list(state.pods):
            if pod.process.proc.poll() is not None and not pod.stopping:
                log.warning("sandbox pod %s exited with %s", pod.name, pod.process.proc.returncode)
                state.pods.remove(pod)
                await self._delete_pod(pod)
        live = [p for p in state.pods if not p.stopping]
        desired = int(deployment["spec"].get("replicas") or 0)
        template = deployment["spec"]["template"]
        grace = int(template["spec"].get("terminationGracePeriodSeconds", 30))
        for _ in range(desired - len(live)):
            state.pods.append(await self._start(key, template))
        if len(live) > desired:
            costs = await self._costs(key[0], [p.name for p in live])
            victims = sorted(live, key=lambda p: (costs.get(p.name, 0), -p.started))
            for pod in victims[: len(live) - desired]:
                self._stop(pod, grace)
        for pod in state.pods:
            if not pod.ready and not pod.stopping and "serving pool" in pod.process.log():
                pod.ready = True
                await self._mark_ready(pod)
        ready = sum(1 for p in state.pods if p.ready and not p.stopping)
        current = sum(1 for p in state.pods if not p.stopping)
        status = {"replicas": current, "readyReplicas": ready, "availableReplicas": ready,
                  "updatedReplicas": current, "observedGeneration":
                  deployment["metadata"].get("generation", 1)}
        if {k: deployment.get("status", {}).get(k) for k in status} != status:
            await self._patch(f"/apis/apps/v1/namespaces/{key[0]}/deployments/{key[1]}/status",
                              {"status": status})

    async def _start(self, key: tuple[str, str], template: dict[str, Any]) -> _Pod:
        namespace, deployment = key
        name = f"{deployment}-{''.join(secrets.choice(_ALPHABET) for _ in range(5))}"
        meta = template.get("metadata", {})
        body = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": meta.get("labels", {}),
                         "annotations": meta.get("annotations", {})},
            "spec": {**template["spec"], "nodeName": "sandbox"},
            "status": {"phase": "Pending"},
        }
        async with self._session.post(f"{self._api}/api/v1/namespaces/{namespace}/pods",
                                      json=body) as response:
            response.raise_for_status()
        container = template["spec"]["containers"][0]
        env = await self._environment(namespace, name, container.get("env", []))
        process = ManagedProcess(name, "conveyor_engine", [], env,
                                 self._workdir / f"{name}.log")
        log.info("sandbox pod %s started", name)
        return _Pod(name, namespace, process, time.monotonic())

    async def _environment(self, namespace: str, pod: str,
                           items: list[dict[str, Any]]) -> dict[str, str]:
        env: dict[str, str] = {}
        for item in items:
            source = item.get("valueFrom")
            if source is None:
                env[item["name"]] = str(item.get("value", ""))
            elif "fieldRef" in source:
                path = source["fieldRef"]["fieldPath"]
                env[item["name"]] = {"metadata.name": pod,
                                     "metadata.namespace": namespace}.get(path, "")
            elif "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                env[item["name"]] = await self._secret(namespace, ref["name"], ref["key"])
        # No node ports to hand out: probes are judged from the log instead.
        env["CONVEYOR_METRICS_PORT"] = "0"
        return {**env, **self._extra_env}

    async def _secret(self, namespace: str, name: str, key: str) -> str:
        async with self._session.get(
                f"{self._api}/api/v1/namespaces/{namespace}/secrets/{name}") as response:
            if response.status != 200:
                return ""
            data = (await response.json()).get("data") or {}
        return base64.b64decode(data.get(key, "")).decode()

    async def _costs(self, namespace: str, names: list[str]) -> dict[str, int]:
        costs = {}
        for name in names:
            async with self._session.get(
                    f"{self._api}/api/v1/namespaces/{namespace}/pods/{name}") as response:
                if response.status != 200:
                    continue
                annotations = (await response.json())["metadata"].get("annotations") or {}
            with contextlib.suppress(ValueError):
                costs[name] = int(annotations.get(DELETION_COST, "0"))
        return costs

    def _stop(self, pod: _Pod, grace: int) -> None:
        pod.stopping = True
        log.info("sandbox pod %s stopping (grace %ss)", pod.name, grace)

        async def stop() -> None:
            await asyncio.to_thread(pod.process.stop, float(grace))
            for state in self._deployments.values():
                if pod in state.pods:
                    state.pods.remove(pod)
            await self._delete_pod(pod)

        task = asyncio.create_task(stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _mark_ready(self, pod: _Pod) -> None:
        await self._patch(f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status", {
            "status": {"phase": "Running", "conditions": [
                {"type": "Ready", "status": "True"}, {"type": "ContainersReady",
                                                      "status": "True"}]}})

    async def _delete_pod(self, pod: _Pod) -> None:
        async with self._session.delete(
                f"{self._api}/api/v1/namespaces/{pod.namespace}/pods/{pod.name}"):
            pass

    async def _patch(self, path: str, body: dict[str, Any]) -> None:
        async with self._session.patch(
                self._api + path, json=body,
                headers={"Content-Type": "application/merge-patch+json"}) as response:
            if response.status >= 400:
                log.warning("sandbox kubelet: PATCH %s -> %s", path, response.status)

    async def stop_all(self) -> None:
        """Stop every pod (SIGTERM, then wait) and forget the Deployments."""
        for state in self._deployments.values():
            for pod in state.pods:
                if not pod.stopping:
                    self._stop(pod, grace=30)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        self._deployments.clear()
