"""Runs the emulated cluster's worker Deployments as local processes.

The sandbox has no nodes, so this plays the ReplicaSet controller and the kubelet for
Deployments labelled ``app.kubernetes.io/component=worker``: it keeps ``spec.replicas``
engine worker processes per Deployment, each with a Pod object in the API, and on
scale-down stops the pods with the lowest ``controller.kubernetes.io/pod-deletion-cost``
first, youngest first among equals, as the ReplicaSet controller does. A stopping pod gets
SIGTERM and the template's ``terminationGracePeriodSeconds`` before SIGKILL. The image is
ignored: pods run the code installed beside the sandbox (``python -m conveyor_engine`` with
this interpreter).

Readiness follows the container's ``readinessProbe`` as a kubelet runs it (:mod:`.probes`):
pods share the machine's network, so each pod's worker serves its health port on a free
loopback port of its own, which stands for the container port named in the template
(``CONVEYOR_METRICS_PORT``), and the probe is sent there every ``periodSeconds``. A pod's
``Ready`` condition and its Deployment's ``readyReplicas``/``availableReplicas`` follow the
probe both ways: a worker whose ``/readyz`` answers 503 (a store it needs is unreachable)
turns not ready after ``failureThreshold`` failures, and ready again after
``successThreshold`` successes. A container without an HTTP readiness probe is ready once
its worker logs that it serves.

Secret volumes of the template are materialised per pod under the sandbox's work
directory (``pods/<pod>/<mountPath>``, directories 0700, files 0400, removed with the pod),
and ``CONVEYOR_SECRETS_DIR`` is mapped to the same place, so a worker finds its Secrets
where the container would. As a kubelet does, a pod whose required Secret is missing does
not start: its container waits with reason ``CreateContainerConfigError`` (on the Pod's
status) and starts once the Secret exists. Mounted Secrets are written once, at start.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import secrets
import shutil
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .probes import HttpProbe, ProbeState, after_probe, http_success, readiness_probe
from .processes import ManagedProcess
from .services import find_free_port

log = logging.getLogger(__name__)
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SELECTOR = "app.kubernetes.io/component=worker"
_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(slots=True)
class _Pod:
    name: str
    namespace: str
    #: None while the container cannot be created (a required Secret is missing).
    process: ManagedProcess | None
    started: float
    template: dict[str, Any] = field(default_factory=dict)
    waiting: str | None = None
    ready: bool = False
    stopping: bool = False
    probe: HttpProbe | None = None
    #: Where the probe is sent: the loopback port standing for the probe's container port
    #: (None when the template serves nothing on that port: every probe then fails).
    probe_port: int | None = None
    probe_state: ProbeState = field(default_factory=ProbeState)
    next_probe: float = 0.0


class _ConfigError(Exception):
    """A pod's container cannot be created from its template (a missing Secret)."""


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
        return [p.process for d in self._deployments.values() for p in d.pods
                if p.process is not None]

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
            if pod.process is None:
                if not pod.stopping:
                    await self._launch(pod)  # waiting for a Secret: try again
                continue
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
        await self._judge_readiness([p for p in state.pods
                                     if not p.stopping and p.process is not None])
        ready = sum(1 for p in state.pods if p.ready and not p.stopping)
        current = sum(1 for p in state.pods if not p.stopping)
        # No minReadySeconds in the templates: a ready pod is an available one.
        status = {"replicas": current, "readyReplicas": ready, "availableReplicas": ready,
                  "unavailableReplicas": max(desired - ready, 0),
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
        pod = _Pod(name, namespace, None, time.monotonic(), template=template)
        await self._launch(pod)
        return pod

    async def _launch(self, pod: _Pod) -> None:
        """Start ``pod``'s worker, or leave it waiting (``CreateContainerConfigError`` on
        its status, written once per message) while a required Secret is missing."""
        name, namespace, template = pod.name, pod.namespace, pod.template
        container = template["spec"]["containers"][0]
        try:
            mapped = await self._mount_secrets(namespace, name, template)
        except _ConfigError as exc:
            if pod.waiting != str(exc):
                pod.waiting = str(exc)
                log.warning("sandbox pod %s cannot start: %s", name, exc)
                await self._patch(f"/api/v1/namespaces/{namespace}/pods/{name}/status", {
                    "status": {"phase": "Pending", "containerStatuses": [{
                        "name": container.get("name", "worker"), "ready": False,
                        "restartCount": 0, "image": container.get("image", ""),
                        "state": {"waiting": {"reason": "CreateContainerConfigError",
                                              "message": str(exc)}}}]}})
            return
        env = await self._environment(namespace, name, container.get("env", []))
        if mapped is not None and env.get("CONVEYOR_SECRETS_DIR", "").startswith("/"):
            env["CONVEYOR_SECRETS_DIR"] = str(mapped) + env["CONVEYOR_SECRETS_DIR"]
        # No pod network: the worker serves its health port on a free loopback port that
        # stands for the container port it was given.
        served = env.get("CONVEYOR_METRICS_PORT", "0")
        host_port = find_free_port()
        env = {**env, **self._extra_env, "CONVEYOR_METRICS_PORT": str(host_port)}
        pod.process = ManagedProcess(name, "conveyor_engine", [], env,
                                     self._workdir / f"{name}.log")
        log.info("sandbox pod %s started", name)
        pod.started = time.monotonic()
        pod.waiting = None
        probe = readiness_probe(container)
        pod.probe = probe
        if probe is not None and served.isdigit() and probe.port == int(served) != 0:
            pod.probe_port = host_port
        pod.next_probe = pod.started + (probe.initial_delay if probe else 0.0)

    def _pod_root(self, pod: str) -> Path:
        return self._workdir / "pods" / pod

    async def _mount_secrets(self, namespace: str, pod: str,
                             template: dict[str, Any]) -> Path | None:
        """Write the template's secret volumes into the pod's private directory, at their
        mount paths below it; that directory, or None when nothing is mounted. Raises
        :class:`_ConfigError` for a required Secret that does not exist."""
        volumes = {v["name"]: v["secret"] for v in template["spec"].get("volumes", [])
                   if "secret" in v}
        mounts = [m for m in template["spec"]["containers"][0].get("volumeMounts", [])
                  if m.get("name") in volumes]
        if not mounts:
            return None
        root = self._pod_root(pod)
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True, mode=0o700)
        for mount in mounts:
            source = volumes[mount["name"]]
            data = await self._secret_data(namespace, source["secretName"])
            if data is None and not source.get("optional", False):
                shutil.rmtree(root, ignore_errors=True)
                raise _ConfigError(f'secret "{source["secretName"]}" not found')
            target = root / mount["mountPath"].lstrip("/")
            target.mkdir(parents=True, mode=0o700, exist_ok=True)
            for key, encoded in (data or {}).items():
                path = target / key
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
                with os.fdopen(fd, "wb") as out:
                    out.write(base64.b64decode(encoded))
        return root

    async def _secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's ``data`` (base64 values), or None when it does not exist."""
        async with self._session.get(
                f"{self._api}/api/v1/namespaces/{namespace}/secrets/{name}") as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            return (await response.json()).get("data") or {}

    async def _judge_readiness(self, pods: list[_Pod]) -> None:
        """Run the readiness probes that are due (concurrently) and write each pod whose
        readiness changed; pods without an HTTP probe are ready once their worker serves."""
        now = time.monotonic()
        due = [p for p in pods if p.probe is not None and now >= p.next_probe]
        results = await asyncio.gather(*(self._probe(p) for p in due))
        for pod, ok in zip(due, results, strict=True):
            assert pod.probe is not None
            pod.next_probe = now + pod.probe.period
            pod.probe_state = after_probe(pod.probe_state, ok, pod.probe)
        for pod in pods:
            if pod.probe is None:
                ready = pod.ready or "serving pool" in pod.process.log()
            else:
                ready = pod.probe_state.ready
            if ready != pod.ready:
                pod.ready = ready
                log.info("sandbox pod %s %s", pod.name, "ready" if ready else "not ready")
                await self._mark_ready(pod)

    async def _probe(self, pod: _Pod) -> bool:
        """One HTTP readiness probe of ``pod``: True on a status in [200, 400)."""
        assert pod.probe is not None
        if pod.probe_port is None:
            return False
        url = f"http://127.0.0.1:{pod.probe_port}{pod.probe.path}"
        try:
            async with self._session.get(
                    url, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=pod.probe.timeout)) as response:
                return http_success(response.status)
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

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
        return env

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
            if pod.process is not None:
                await asyncio.to_thread(pod.process.stop, float(grace))
            for state in self._deployments.values():
                if pod in state.pods:
                    state.pods.remove(pod)
            await self._delete_pod(pod)

        task = asyncio.create_task(stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

    async def _mark_ready(self, pod: _Pod) -> None:
        """Write the pod's ``Ready`` and ``ContainersReady`` conditions as ``pod.ready``."""
        status = "True" if pod.ready else "False"
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        await self._patch(f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status", {
            "status": {"phase": "Running", "conditions": [
                {"type": kind, "status": status, "lastTransitionTime": since}
                for kind in ("Ready", "ContainersReady")]}})

    async def _delete_pod(self, pod: _Pod) -> None:
        shutil.rmtree(self._pod_root(pod.name), ignore_errors=True)
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
