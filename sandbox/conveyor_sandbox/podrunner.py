"""The kubelet half of the sandbox's kubelet emulation: one pod's container as a local process.

A pod runs ``python -m conveyor_engine`` with this interpreter (the image is ignored: pods
run the code installed beside the sandbox), its output appended to ``<workdir>/<pod>.log``
(one file per pod, whatever its restarts). As a kubelet with ``restartPolicy: Always``
does, a container that exits is started again in the same pod after the crash-loop
back-off (:class:`.restarts.CrashLoopBackOff`; meanwhile ``waiting: CrashLoopBackOff``),
with ``restartCount`` and ``lastState.terminated`` (exit code, reason, the end of its
output) on the pod's status. A stopping pod gets SIGTERM and its own template's
``terminationGracePeriodSeconds`` before SIGKILL.

Readiness follows the container's ``readinessProbe`` as a kubelet runs it (:mod:`.probes`):
pods share the machine's network, so each pod's worker serves its health port on a free
loopback port of its own, which stands for the container port named in the template
(``CONVEYOR_METRICS_PORT``), and the probe is sent there every ``periodSeconds``. A
container without an HTTP readiness probe is ready once its worker logs that it serves.

Secret volumes of the template are materialised per pod under the work directory
(``pods/<pod>/<mountPath>``, directories 0700, files 0400, removed with the pod), and
``CONVEYOR_SECRETS_DIR`` is mapped to the same place, so a worker finds its Secrets where
the container would. As a kubelet does, a pod whose required Secret is missing does not
start: its container waits with reason ``CreateContainerConfigError`` (message ``secret
"<name>" not found``) and starts once the Secret exists. Mounted Secrets are written at
each start of the container.

The pod's status (:func:`.restarts.pod_status`) is written only when it changed.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .probes import HttpProbe, ProbeState, after_probe, http_success, readiness_probe
from .processes import ManagedProcess
from .restarts import (
    ContainerView,
    CrashLoopBackOff,
    back_off_message,
    pod_status,
    terminated,
    termination_message,
)
from .services import find_free_port

log = logging.getLogger(__name__)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass(slots=True)
class Pod:
    """One pod the kubelet runs: its template (and that template's hash), its container's
    process (None while it waits: a missing Secret, a back-off) and what its status shows.
    Times are monotonic seconds unless named ``*_at`` (RFC 3339)."""

    name: str
    namespace: str
    template: dict[str, Any]
    template_hash: str
    created: float
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    process: ManagedProcess | None = None
    #: When the current container started (monotonic) and its RFC 3339 twin.
    started: float = 0.0
    started_at: str | None = None
    #: Where this container's output begins in the pod's log (bytes).
    log_offset: int = 0
    waiting: tuple[str, str] | None = None
    ready: bool = False
    ready_at: str = field(default_factory=_now)
    stopping: bool = False
    restarts: int = 0
    crashes: int = 0
    restart_due: float | None = None
    last_terminated: dict[str, Any] | None = None
    ever_started: bool = False
    probe: HttpProbe | None = None
    #: Where the probe is sent: the loopback port standing for the probe's container port
    #: (None when the template serves nothing on that port: every probe then fails).
    probe_port: int | None = None
    probe_state: ProbeState = field(default_factory=ProbeState)
    next_probe: float = 0.0
    written: dict[str, Any] | None = None

    @property
    def container(self) -> dict[str, Any]:
        """The template's (one) container."""
        return self.template["spec"]["containers"][0]

    @property
    def grace(self) -> int:
        """Its template's ``terminationGracePeriodSeconds`` (default 30)."""
        return int(self.template["spec"].get("terminationGracePeriodSeconds", 30))

    @property
    def serving(self) -> bool:
        """Whether its container's process runs (not waiting, not stopping)."""
        return self.process is not None and not self.stopping


class _ConfigError(Exception):
    """A pod's container cannot be created from its template (a missing Secret)."""


class PodRunner:
    """Runs, probes, restarts and stops pods' containers and writes their status."""

    def __init__(self, session: aiohttp.ClientSession, api_url: str, workdir: Path,
                 extra_env: dict[str, str], backoff: CrashLoopBackOff) -> None:
        self._session = session
        self._api = api_url.rstrip("/")
        self._workdir = workdir
        self._extra_env = extra_env
        self.backoff = backoff

    def log_path(self, pod: Pod) -> Path:
        """The pod's log file (all its containers' output, appended)."""
        return self._workdir / f"{pod.name}.log"

    async def create(self, namespace: str, name: str, template: dict[str, Any],
                     labels: dict[str, str], hash_: str) -> Pod:
        """Create the Pod object (with ``labels``) and start its container."""
        meta = template.get("metadata", {})
        pod = Pod(name, namespace, template, hash_, time.monotonic())
        body = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": labels,
                         "annotations": meta.get("annotations", {})},
            "spec": {**template["spec"], "nodeName": "sandbox"},
            "status": {"phase": "Pending"},
        }
        async with self._session.post(f"{self._api}/api/v1/namespaces/{namespace}/pods",
                                      json=body) as response:
            response.raise_for_status()
            pod.uid = (await response.json()).get("metadata", {}).get("uid") or pod.uid
        await self.launch(pod)
        return pod

    async def tick(self, pod: Pod) -> None:
        """Notice an exited container (then back off), start one whose back-off is over or
        whose Secret appeared."""
        now = time.monotonic()
        if pod.stopping:
            return
        if pod.process is not None and pod.process.proc.poll() is not None:
            self._exited(pod, now)
        if pod.process is None and (pod.restart_due is None or now >= pod.restart_due):
            await self.launch(pod)

    def _exited(self, pod: Pod, now: float) -> None:
        assert pod.process is not None
        code = pod.process.stop(0)  # already exited: closes its log
        with self.log_path(pod).open("rb") as out:
            out.seek(pod.log_offset)
            message = termination_message(out.read())
        pod.last_terminated = terminated(code, message, pod.started_at or _now(), _now())
        pod.crashes = self.backoff.crashes_in_a_row(pod.crashes, now - pod.started)
        delay = self.backoff.delay(pod.crashes)
        pod.process, pod.started_at, pod.restart_due = None, None, now + delay
        pod.waiting = ("CrashLoopBackOff", back_off_message(
            delay, pod.container.get("name", "worker"), pod.name, pod.namespace, pod.uid))
        pod.probe_state, pod.ready, pod.ready_at = ProbeState(), False, _now()
        log.warning("sandbox pod %s: container exited with code %s; restarting in %gs",
                    pod.name, code, delay)

    async def launch(self, pod: Pod) -> None:
        """Start ``pod``'s worker, or leave it waiting (``CreateContainerConfigError``)
        while a required Secret is missing."""
        name, namespace, template = pod.name, pod.namespace, pod.template
        container = pod.container
        try:
            mapped = await self._mount_secrets(namespace, name, template)
        except _ConfigError as exc:
            if pod.waiting != ("CreateContainerConfigError", str(exc)):
                log.warning("sandbox pod %s cannot start: %s", name, exc)
            pod.waiting = ("CreateContainerConfigError", str(exc))
            pod.restart_due = None
            return
        env = await self._environment(namespace, name, container.get("env", []))
        if mapped is not None and env.get("CONVEYOR_SECRETS_DIR", "").startswith("/"):
            env["CONVEYOR_SECRETS_DIR"] = str(mapped) + env["CONVEYOR_SECRETS_DIR"]
        # No pod network: the worker serves its health port on a free loopback port that
        # stands for the container port it was given.
        served = env.get("CONVEYOR_METRICS_PORT", "0")
        host_port = find_free_port()
        env = {**env, **self._extra_env, "CONVEYOR_METRICS_PORT": str(host_port)}
        path = self.log_path(pod)
        pod.log_offset = path.stat().st_size if path.exists() else 0
        if pod.ever_started:
            pod.restarts += 1
        pod.process = ManagedProcess(name, "conveyor_engine", [], env, path)
        log.info("sandbox pod %s: container started (restarts: %d)", name, pod.restarts)
        pod.started, pod.started_at = time.monotonic(), _now()
        pod.ever_started, pod.waiting, pod.restart_due = True, None, None
        probe = readiness_probe(container)
        pod.probe, pod.probe_port, pod.probe_state = probe, None, ProbeState()
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
                data = await self._secret_data(namespace, ref["name"]) or {}
                env[item["name"]] = base64.b64decode(data.get(ref["key"], "")).decode()
        return env

    async def judge_readiness(self, pods: list[Pod]) -> None:
        """Run the readiness probes that are due (concurrently) of the running pods;
        pods without an HTTP probe are ready once their worker serves."""
        now = time.monotonic()
        running = [p for p in pods if p.serving]
        due = [p for p in running if p.probe is not None and now >= p.next_probe]
        results = await asyncio.gather(*(self._probe(p) for p in due))
        for pod, ok in zip(due, results, strict=True):
            assert pod.probe is not None
            pod.next_probe = now + pod.probe.period
            pod.probe_state = after_probe(pod.probe_state, ok, pod.probe)
        for pod in running:
            assert pod.process is not None
            if pod.probe is None:
                ready = pod.ready or "serving pool" in pod.process.log()[pod.log_offset:]
            else:
                ready = pod.probe_state.ready
            if ready != pod.ready:
                pod.ready, pod.ready_at = ready, _now()
                log.info("sandbox pod %s %s", pod.name, "ready" if ready else "not ready")

    async def _probe(self, pod: Pod) -> bool:
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

    async def write_status(self, pod: Pod) -> None:
        """Write the pod's status when it differs from the last one written."""
        container = pod.container
        status = pod_status(ContainerView(
            name=container.get("name", "worker"), image=container.get("image", ""),
            ready=pod.ready, restarts=pod.restarts,
            running_since=pod.started_at if pod.process is not None else None,
            waiting=pod.waiting, last_terminated=pod.last_terminated,
            ready_since=pod.ready_at, ever_started=pod.ever_started))
        if status == pod.written:
            return
        path = f"/api/v1/namespaces/{pod.namespace}/pods/{pod.name}/status"
        async with self._session.patch(
                self._api + path, json={"status": status},
                headers={"Content-Type": "application/merge-patch+json"}) as response:
            if response.status < 400:
                pod.written = status
            elif response.status != 404:  # 404: deleted meanwhile (noticed next pass)
                log.warning("sandbox kubelet: PATCH %s -> %s", path, response.status)

    async def stop(self, pod: Pod, grace: float) -> None:
        """Stop the pod's container (SIGTERM, ``grace`` seconds, SIGKILL), remove its
        secret volumes and its Pod object (if still there)."""
        pod.stopping = True
        log.info("sandbox pod %s stopping (grace %ss)", pod.name, grace)
        if pod.process is not None:
            await asyncio.to_thread(pod.process.stop, float(grace))
        shutil.rmtree(self._pod_root(pod.name), ignore_errors=True)
        async with self._session.delete(
                f"{self._api}/api/v1/namespaces/{pod.namespace}/pods/{pod.name}"):
            pass
