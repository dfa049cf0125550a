"""The sandbox: a whole Conveyor on one machine, with nothing installed but the project.

It runs, in this process, the Kubernetes API emulation (:mod:`.apiserver`) and a stand-in
for nodes (:mod:`.kubelet`: worker Deployments become local processes) and, as child
processes, the real operator and engine workers. The ``default`` WorkerPool is applied at
start, so workers come and go exactly as the operator scales them. The CRDs are the ones the
installed operator expects (:func:`conveyor_operator.crdcheck.expected_crds`: the wheel's copy,
or the checkout's ``crds/``), so this works from an installed package as from a checkout.
Redis and PostgreSQL come from the given URLs or local servers (:mod:`.services`; a fresh
database and key prefix per sandbox, removed at exit); a local httpbin
(:mod:`.services.httpbin`) serves the examples: workers reach it as
``http://httpbin.conveyor.test`` through ``HTTP_PROXY``, so manifests need no local port
numbers, and any other proxied host is answered ``502 Bad Gateway``. The end-to-end tests
use the same class.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from conveyor_engine.phases import EXECUTION_FINAL
from conveyor_operator.crdcheck import expected_crds
from conveyor_operator.resources import EXECUTIONS, GROUP, VERSION, WORKFLOWS

from . import services
from .apiserver import SandboxApiServer
from .apply import Applied, Applier, manifests
from .kubelet import Kubelet
from .processes import ManagedProcess, ProcessFailed, RestartBudget, describe_exit
from .restarts import CrashLoopBackOff
from .workdir import WorkdirLock

log = logging.getLogger(__name__)



def default_pool(minimum: int, maximum: int) -> dict[str, Any]:
    """The ``default`` WorkerPool the sandbox runs (the chart installs one too)."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "WorkerPool",
        "metadata": {"name": "default"},
        "spec": {"minReplicas": minimum, "maxReplicas": max(minimum, maximum),
                 "concurrency": 32, "scaleDownStabilizationSeconds": 30,
                 "shutdownGraceSeconds": 10},
    }


#: Leader election in the sandbox: one operator, restarted by the watchdog after a crash, so
#: a short lease (the restarted process waits for the dead one's lease to expire).
SANDBOX_LEASE = {"CONVEYOR_LEASE_DURATION_SECONDS": "6", "CONVEYOR_RENEW_DEADLINE_SECONDS": "4",
                 "CONVEYOR_RETRY_PERIOD_SECONDS": "1"}


@dataclass
class SandboxConfig:
    """What to run. ``redis_url``/``database_url`` None means local or private servers.

    ``database_url`` names a database to use as it is; without it a fresh database is
    created on the local server and dropped at exit. ``workers``/``max_workers`` bound the
    ``default`` pool. ``engine_env``/``operator_env`` add ``CONVEYOR_*`` settings for the
    workers and the operator. ``httpbin_hosts`` are the hosts the workers reach the local
    httpbin by (plain ``http://`` through ``HTTP_PROXY``); any other host gets ``502 Bad
    Gateway`` from that proxy. An operator that exits without :meth:`Sandbox.stop_operator`
    is restarted, unless it crashed more than ``operator_restarts`` times within
    ``operator_restart_window`` seconds: then the sandbox gives up (:attr:`Sandbox.failure`).
    ``crash_backoff`` is the kubelet's restart back-off of worker containers that exit
    (Kubernetes' values by default; tests use shorter ones).
    """

    workdir: Path = field(default_factory=lambda: Path(".conveyor"))
    redis_url: str | None = None
    database_url: str | None = None
    workers: int = 1
    max_workers: int = 4
    namespace: str = "default"
    engine_env: dict[str, str] = field(default_factory=dict)
    operator_env: dict[str, str] = field(default_factory=dict)
    httpbin_hosts: tuple[str, ...] = (services.SANDBOX_HOST,)
    operator_restarts: int = 5
    operator_restart_window: float = 60.0
    crash_backoff: CrashLoopBackOff = field(default_factory=CrashLoopBackOff)


class Sandbox:
    """``async with Sandbox(config) as sandbox:`` everything runs; on exit all is stopped.

    A watchdog restarts the operator when it exits unasked (see :class:`SandboxConfig`) and
    tells ``report`` (default: a logged warning) what happened; when it gives up,
    :attr:`failure` holds the reason, :attr:`failed` is set and :meth:`wait_finished` raises.
    """

    #: Seconds between two looks of the watchdog at the operator process.
    WATCH_INTERVAL = 0.2

    def __init__(self, config: SandboxConfig | None = None, *,
                 report: Callable[[str], None] | None = None) -> None:
        self.config = config or SandboxConfig()
        self.report = report or log.warning
        self.key_prefix = f"sandbox-{secrets.token_hex(4)}"
        self.api: SandboxApiServer
        self.kubeconfig: Path
        self.redis_url = ""
        self.database_url = ""
        self.httpbin_url = ""
        self.operator: ManagedProcess | None = None
        self.kubelet: Kubelet | None = None
        self._kubelet_task: asyncio.Task | None = None
        self._sync = contextlib.ExitStack()
        self._async = contextlib.AsyncExitStack()
        self._session: aiohttp.ClientSession | None = None
        self._operator_starts = 0
        # The operator should be running: set by start_operator, cleared by stop_operator
        # and at exit. The watchdog restarts a dead operator only while it is set.
        self._operator_wanted = False
        self._operator_lock = asyncio.Lock()
        self._watchdog_task: asyncio.Task | None = None
        #: How often the watchdog restarted the operator, and how many looks it has taken.
        self.operator_restarts = 0
        self.watchdog_passes = 0
        #: Why the sandbox gave up (the operator kept crashing); ``failed`` is then set.
        self.failure: ProcessFailed | None = None
        self.failed = asyncio.Event()

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        try:
            await self._start()
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def _start(self) -> None:
        cfg = self.config
        # First, so a second sandbox in this directory stops before it touches anything.
        self._sync.enter_context(WorkdirLock(cfg.workdir))
        self.redis_url = await asyncio.to_thread(
            self._sync.enter_context, services.redis_server(cfg.redis_url))
        if cfg.database_url:
            self.database_url = cfg.database_url
        else:
            server = await asyncio.to_thread(
                self._sync.enter_context, services.postgres_server(None))
            self.database_url = await asyncio.to_thread(
                self._sync.enter_context,
                services.fresh_database_sync(server, "conveyor_sandbox"))
        self._session = await self._async.enter_async_context(aiohttp.ClientSession())
        self.httpbin_url = await asyncio.to_thread(
            self._sync.enter_context,
            services.httpbin_server(cfg.httpbin_hosts, log_path=cfg.workdir / "httpbin.log"))
        self.api = await self._async.enter_async_context(SandboxApiServer())
        self.kubeconfig = self.api.write_kubeconfig(cfg.workdir / "kubeconfig",
                                                    namespace=cfg.namespace)
        await self.apply_objects(expected_crds())
        self.kubelet = Kubelet(self._session, self.api.url, cfg.workdir, {
            # Examples call http://httpbin.conveyor.test: plain-HTTP calls to hosts that are
            # not loopback go to the local httpbin, which serves that one host and answers
            # 502 Bad Gateway for any other (see .services.httpbin).
            "HTTP_PROXY": self.httpbin_url,
            "NO_PROXY": "127.0.0.1,localhost,::1",
            **cfg.engine_env,
        }, backoff=cfg.crash_backoff)
        self._kubelet_task = asyncio.create_task(self.kubelet.run(), name="sandbox-kubelet")
        await self.start_operator()
        await self.apply_objects([default_pool(cfg.workers, cfg.max_workers)])
        await self.until(lambda: self.ready_workers("default", at_least=cfg.workers),
                         timeout=60, what="the default pool's workers", process=self.operator)
        self._watchdog_task = asyncio.create_task(self._watch_operator(),
                                                  name="sandbox-operator-watchdog")

    async def __aexit__(self, *exc: object) -> None:
        self._operator_wanted = False
        if self._watchdog_task is not None:
            self._watchdog_task.cancel()
            await asyncio.gather(self._watchdog_task, return_exceptions=True)
        if self.operator is not None:  # first, so nothing rescales while pods stop
            await asyncio.to_thread(self.operator.stop)
        if self._kubelet_task is not None:
            self._kubelet_task.cancel()
            await asyncio.gather(self._kubelet_task, return_exceptions=True)
        if self.kubelet is not None:
            await self.kubelet.stop_all()
        if self.redis_url:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(services.delete_prefixed_keys, self.redis_url,
                                        self.key_prefix)
        await self._async.aclose()
        await asyncio.to_thread(self._sync.close)

    # -- processes --------------------------------------------------------------------------------

    def _engine_env(self) -> dict[str, str]:
        return {
            "CONVEYOR_REDIS_URL": self.redis_url,
            "CONVEYOR_DATABASE_URL": self.database_url,
            "CONVEYOR_KEY_PREFIX": self.key_prefix,
        }

    async def start_operator(self) -> ManagedProcess:
        """Start the operator and wait until it watches Workflows and Executions.

        From then on the watchdog restarts it if it exits, until :meth:`stop_operator`.
        """
        async with self._operator_lock:
            started = await self._start_operator()
            self._operator_wanted = True
            return started

    async def _start_operator(self) -> ManagedProcess:
        self._operator_starts += 1
        seen = len(self.api.requests)
        env = {**self._engine_env(), "KUBECONFIG": str(self.kubeconfig),
               "CONVEYOR_WORKER_NAMESPACE": self.config.namespace,
               **SANDBOX_LEASE, **self.config.operator_env}
        self.operator = ManagedProcess(
            "operator", "conveyor_operator", ["run"], env,
            self.config.workdir / f"operator-{self._operator_starts}.log")
        await self.until(lambda: self._watching(since=seen), timeout=60,
                         what="the operator to watch Workflows and Executions",
                         process=self.operator)
        return self.operator

    def _watching(self, since: int) -> bool:
        watched = {r.resource for r in self.api.requests[since:] if r.verb == "watch"}
        return {WORKFLOWS, EXECUTIONS} <= watched

    async def stop_operator(self, *, kill: bool = False) -> None:
        """Stop the operator (gracefully, or SIGKILL with ``kill``); it stays stopped (the
        watchdog leaves it alone) until :meth:`start_operator`."""
        self._operator_wanted = False  # before the signal, so the watchdog never sees a crash
        async with self._operator_lock:
            if self.operator is not None:
                if kill:
                    await asyncio.to_thread(self.operator.kill)
                else:
                    await asyncio.to_thread(self.operator.stop)

    async def _watch_operator(self) -> None:
        """Restart the operator when it exits unasked, within :class:`RestartBudget`."""
        cfg = self.config
        budget = RestartBudget(limit=cfg.operator_restarts, window=cfg.operator_restart_window)
        while True:
            await asyncio.sleep(self.WATCH_INTERVAL)
            self.watchdog_passes += 1
            dead = self.operator
            if not self._operator_wanted or dead is None or dead.proc.poll() is None:
                continue
            async with self._operator_lock:
                if not self._operator_wanted or self.operator is not dead:
                    continue  # stopped or replaced on purpose meanwhile
                await asyncio.to_thread(dead.stop)  # reaped already; closes its log file
                exited = (f"the operator (pid {dead.proc.pid}) exited with "
                          f"{describe_exit(dead.proc.returncode)}; "
                          f"its log: {dead.log_path.resolve()}")
                delay = budget.crashed(time.monotonic())
                if delay is None:
                    self._operator_wanted = False
                    self.failure = ProcessFailed(
                        f"{exited}\nit exited {len(budget.crashes)} times within "
                        f"{budget.window:.0f}s; giving up. End of its log:\n{dead.tail()}")
                    self.report(f"{exited}; it keeps crashing, giving up")
                    self.failed.set()
                    return
                self.report(f"{exited}; restarting it"
                            + (f" in {delay:.1f}s" if delay else ""))
                await asyncio.sleep(delay)
                try:
                    started = await self._start_operator()
                except Exception as exc:  # whatever failed, the next look counts the crash
                    self.report(f"the restarted operator did not come up: {exc}")
                    if self.operator is not None and self.operator.proc.poll() is None:
                        # Alive but not watching: count it as a crash on the next look.
                        await asyncio.to_thread(self.operator.kill)
                    continue
                self.operator_restarts += 1
                self.report(f"operator restarted (pid {started.proc.pid}); its log: "
                            f"{started.log_path.resolve()}")

    def check_failed(self) -> None:
        """Raise :attr:`failure` if the sandbox gave up; :class:`ProcessFailed` if the
        operator was stopped on purpose and is not running (nothing would ever finish)."""
        if self.failure is not None:
            raise self.failure
        if not self._operator_wanted and self.operator is not None:
            self.operator.check_alive()

    async def until(self, probe: Any, *, timeout: float, what: str,
                    process: ManagedProcess | None = None) -> Any:
        """Poll ``probe()`` (sync or async) until truthy; ``TimeoutError`` naming ``what``."""
        deadline = time.monotonic() + timeout
        while True:
            value = probe()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return value
            if process is not None:
                process.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(0.1)

    # -- the API ----------------------------------------------------------------------------------

    async def apply(self, paths: list[Path]) -> list[Applied]:
        """Apply every manifest under ``paths`` (CRDs first, then the rest in order)."""
        assert self._session is not None
        applier = Applier(self._session, self.api.url)
        docs = manifests(paths)
        docs.sort(key=lambda item: item[1]["kind"] != "CustomResourceDefinition")
        return [await applier.apply(doc, self.config.namespace) for _, doc in docs]

    async def apply_objects(self, docs: list[dict[str, Any]]) -> list[Applied]:
        """Apply objects given as dicts (same rules as :meth:`apply`)."""
        assert self._session is not None
        applier = Applier(self._session, self.api.url)
        return [await applier.apply(doc, self.config.namespace) for doc in docs]

    async def get_cluster(self, plural: str, name: str) -> dict | None:
        """One cluster-scoped ``conveyor.dev`` object (a WorkerPool), or None."""
        assert self._session is not None
        url = f"{self.api.url}/apis/{GROUP}/{VERSION}/{plural}/{name}"
        async with self._session.get(url) as response:
            return await response.json() if response.status == 200 else None

    async def list_pods(self, labels: dict[str, str]) -> list[dict]:
        """Pods of the sandbox namespace matching ``labels``."""
        assert self._session is not None
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        url = f"{self.api.url}/api/v1/namespaces/{self.config.namespace}/pods"
        async with self._session.get(url, params={"labelSelector": selector}) as response:
            return (await response.json()).get("items", [])

    async def deployment(self, pool: str) -> dict | None:
        """The worker Deployment of ``pool``, or None."""
        assert self._session is not None
        url = (f"{self.api.url}/apis/apps/v1/namespaces/{self.config.namespace}/deployments/"
               f"conveyor-worker-{pool}")
        async with self._session.get(url) as response:
            return await response.json() if response.status == 200 else None

    async def ready_workers(self, pool: str, *, at_least: int) -> bool:
        """True when ``pool``'s Deployment reports at least ``at_least`` ready replicas."""
        found = await self.deployment(pool)
        return bool(found) and (found.get("status", {}).get("readyReplicas") or 0) >= at_least

    async def get(self, plural: str, name: str, namespace: str | None = None) -> dict | None:
        """One object of ``conveyor.dev`` kind ``plural``, or None."""
        assert self._session is not None
        ns = namespace or self.config.namespace
        url = f"{self.api.url}/apis/{GROUP}/{VERSION}/namespaces/{ns}/{plural}/{name}"
        async with self._session.get(url) as response:
            return await response.json() if response.status == 200 else None

    async def wait_finished(self, names: list[tuple[str, str]], timeout: float) -> list[dict]:
        """Wait until the named Executions (``(namespace, name)``) are in a final phase."""

        async def all_final() -> list[dict] | None:
            found = [await self.get(EXECUTIONS, name, ns) for ns, name in names]
            self.check_failed()
            if all(f and f.get("status", {}).get("phase") in EXECUTION_FINAL for f in found):
                return found  # type: ignore[return-value]
            return None

        return await self.until(all_final, timeout=timeout, what="the Executions to finish")
