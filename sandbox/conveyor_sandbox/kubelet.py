"""Runs the emulated cluster's worker Deployments as local processes.

The sandbox has no nodes, so this plays the Deployment and ReplicaSet controllers and the
kubelet for Deployments labelled ``app.kubernetes.io/component=worker``. The controller
half is here, its decisions in :mod:`.rollout` (pure); the kubelet half, one pod's
container as a process, is :mod:`.podrunner`. Every ``interval`` seconds a pass:

* lists the worker Deployments and their Pod objects; a pod whose object was deleted
  (``kubectl delete pod``) has its process stopped gracefully (its template's
  ``terminationGracePeriodSeconds``) and the Deployment gets a replacement;
* lets each pod's kubelet act: a container that exited is restarted in the same pod after
  the crash-loop back-off (``restartPolicy: Always``; :class:`.restarts.CrashLoopBackOff`,
  a setting of :class:`Kubelet`), a container waiting for a Secret starts once it exists;
* rolls out: pods carry their template's hash (label ``pod-template-hash``; names
  ``<deployment>-<hash>-<5 chars>``); when ``spec.template`` changes (a WorkerPool's env or
  Secrets, ``kubectl rollout restart``), new pods replace old ones by the Deployment's
  strategy (the operator's: RollingUpdate, maxSurge 1, maxUnavailable 0: a new pod starts,
  once it is ready an old one stops, and so on); scale-down stops the pods with the lowest
  ``controller.kubernetes.io/pod-deletion-cost`` first, youngest first among equals;
* probes readiness, writes each pod's status when it changed (phase, ``Ready``,
  ``containerStatuses`` with ``restartCount``, ``state``, ``lastState``) and the
  Deployment's status (``replicas``, ``updatedReplicas``, ``readyReplicas``,
  ``availableReplicas``, ``observedGeneration``) when it changed, so ``kubectl rollout
  status`` and the operator's "settled" rule read the truth during and after a rollout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import string
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .podrunner import Pod, PodRunner
from .processes import ManagedProcess
from .restarts import CrashLoopBackOff
from .rollout import PodView, Strategy, deployment_status, rollout_step, template_hash

log = logging.getLogger(__name__)
DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"
SELECTOR = "app.kubernetes.io/component=worker"
HASH_LABEL = "pod-template-hash"
_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(slots=True)
class _Deployment:
    pods: list[Pod] = field(default_factory=list)


class Kubelet:
    """``await kubelet.run()`` until cancelled; :meth:`stop_all` ends every pod.

    ``backoff`` is the crash-loop back-off of containers that exit (Kubernetes' 10 s doubling
    to 300 s by default); ``interval`` the seconds between two passes.
    """

    def __init__(self, session: aiohttp.ClientSession, api_url: str, workdir: Path,
                 extra_env: dict[str, str], interval: float = 0.2,
                 backoff: CrashLoopBackOff | None = None) -> None:
        self._session = session
        self._api = api_url.rstrip("/")
        self._interval = interval
        self._runner = PodRunner(session, api_url, workdir, extra_env,
                                 backoff or CrashLoopBackOff())
        self._deployments: dict[tuple[str, str], _Deployment] = {}
        self._stopping: set[asyncio.Task] = set()

    @property
    def processes(self) -> list[ManagedProcess]:
        """Every pod process currently known (running or stopping)."""
        return [p.process for d in self._deployments.values() for p in d.pods
                if p.process is not None]

    def pods(self, namespace: str, deployment: str) -> list[str]:
        """Names of the pods of one Deployment that are not stopping."""
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
        listed_at = time.monotonic()
        deployments = await self._list("/apis/apps/v1/deployments")
        objects = {(p["metadata"]["namespace"], p["metadata"]["name"]): p
                   for p in await self._list("/api/v1/pods")}
        seen = set()
        for deployment in deployments:
            meta = deployment["metadata"]
            key = (meta["namespace"], meta["name"])
            seen.add(key)
            await self._reconcile_one(key, deployment, objects, listed_at)
        for key in set(self._deployments) - seen:  # deleted Deployments lose their pods
            for pod in self._deployments[key].pods:
                if not pod.stopping:
                    self._stop(pod)
            self._deployments.pop(key)

    async def _list(self, path: str) -> list[dict[str, Any]]:
        async with self._session.get(f"{self._api}{path}",
                                     params={"labelSelector": SELECTOR}) as response:
            response.raise_for_status()
            return (await response.json()).get("items") or []

    async def _reconcile_one(self, key: tuple[str, str], deployment: dict[str, Any],
                             objects: dict[tuple[str, str], dict[str, Any]],
                             listed_at: float) -> None:
        state = self._deployments.setdefault(key, _Deployment())
        for pod in [p for p in state.pods if not p.stopping]:
            if pod.created < listed_at and (pod.namespace, pod.name) not in objects:
                log.info("sandbox pod %s: its Pod object was deleted", pod.name)
                self._stop(pod)
                continue
            await self._runner.tick(pod)
        spec = deployment["spec"]
        desired = int(spec.get("replicas") or 0)
        current = template_hash(spec["template"])
        live = [p for p in state.pods if not p.stopping]

        def view(pod: Pod) -> PodView:
            annotations = objects.get((pod.namespace, pod.name), {}).get(
                "metadata", {}).get("annotations") or {}
            cost = 0
            with contextlib.suppress(ValueError):
                cost = int(annotations.get(DELETION_COST, "0"))
            return PodView(pod.name, pod.ready, cost, pod.created)

        step = rollout_step(
            desired, Strategy.of(spec),
            [view(p) for p in live if p.template_hash == current],
            [view(p) for p in live if p.template_hash != current],
            terminating_old=sum(1 for p in state.pods
                                if p.stopping and p.template_hash != current))
        for pod in live:
            if pod.name in step.stop:
                self._stop(pod)
        for _ in range(step.start):
            state.pods.append(await self._create(key, spec["template"], current))
        live = [p for p in state.pods if not p.stopping]
        await self._runner.judge_readiness(live)
        for pod in live:
            await self._runner.write_status(pod)
        status = deployment_status(desired, deployment["metadata"].get("generation", 1),
                                   [(p.template_hash == current, p.ready) for p in live])
        if {k: deployment.get("status", {}).get(k) for k in status} != status:
            await self._patch(f"/apis/apps/v1/namespaces/{key[0]}/deployments/{key[1]}/status",
                              {"status": status})

    async def _create(self, key: tuple[str, str], template: dict[str, Any],
                      hash_: str) -> Pod:
        namespace, deployment = key
        suffix = "".join(secrets.choice(_ALPHABET) for _ in range(5))
        labels = {**(template.get("metadata", {}).get("labels") or {}), HASH_LABEL: hash_}
        pod = await self._runner.create(namespace, f"{deployment}-{hash_}-{suffix}",
                                        template, labels, hash_)
        log.info("sandbox pod %s created (template %s)", pod.name, hash_)
        return pod

    def _stop(self, pod: Pod) -> None:
        """Stop ``pod`` in the background (its own grace period), then forget it."""
        pod.stopping = True

        async def stop() -> None:
            try:
                await self._runner.stop(pod, pod.grace)
            finally:
                for state in self._deployments.values():
                    if pod in state.pods:
                        state.pods.remove(pod)

        task = asyncio.create_task(stop())
        self._stopping.add(task)
        task.add_done_callback(self._stopping.discard)

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
                    self._stop(pod)
        if self._stopping:
            await asyncio.gather(*self._stopping, return_exceptions=True)
        self._deployments.clear()
