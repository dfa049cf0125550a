"""The operator process's life: probes, leader election, kopf, and the hand-over.

1. Serve ``/healthz`` and ``/readyz`` (a standby answers too).
2. With ``leader_election`` on (the default), wait as a standby until this process holds
   the Lease (:class:`~conveyor_operator.leader.elector.LeaderElector`); only then start
   kopf, so a standby never watches, writes status, posts Events or scales pools.
3. While leading, renew the Lease. A leader that cannot renew within its renew deadline
   exits at once (code 70) without finishing anything: another process may be taking over,
   and the kubelet restarts this one as a standby. Exiting is the simplest safe choice
   (client-go's leaderelection does the same through ``OnStoppedLeading``).
4. On a graceful stop (SIGTERM/SIGINT: kopf stops its handlers) release the Lease, so a
   standby takes over within one retry period instead of one lease duration.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid

import kopf

from .health import start_probe_server
from .kube import Kube
from .leader.elector import LeaderElector
from .probes import OperatorState, Role
from .settings import OperatorSettings

log = logging.getLogger(__name__)

#: Exit code of a leader that lost its Lease (EX_SOFTWARE); the kubelet restarts it.
LOST_LEASE_EXIT = 70


def identity() -> str:
    """This process's candidate identity: ``<hostname>_<random>`` as client-go's, so a
    restarted process in the same pod is a new candidate."""
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:12]}"


def lease_namespace(config: OperatorSettings) -> str:
    """Where the Lease lives: the setting, else ``$POD_NAMESPACE`` (the operator's own
    namespace, from the downward API), else the watched namespace, else ``default``."""
    return (config.lease_namespace or os.environ.get("POD_NAMESPACE") or config.namespace
            or "default")


async def operate(config: OperatorSettings) -> None:
    """Run the operator until it is stopped; see the module's docstring."""
    state = OperatorState()
    probes = None
    if config.health_port:
        probes = await start_probe_server(config.health_port, state,
                                          lambda: config.watch_stall_seconds)
    elector: LeaderElector | None = None
    kube: Kube | None = None
    try:
        if config.leader_election:
            kube = await Kube.connect(config.kubeconfig or os.environ.get("KUBECONFIG"))
            elector = LeaderElector(
                kube.api, namespace=lease_namespace(config), name=config.lease_name,
                identity=identity(), lease_duration=config.lease_duration_seconds,
                renew_deadline=config.renew_deadline_seconds,
                retry_period=config.retry_period_seconds)
            state.role = Role.STANDBY
            log.info("standby: waiting for the lease %s/%s as %s", elector.namespace,
                     elector.name, elector.identity)
            await elector.acquire()
        state.role = Role.LEADING
        await _lead(config, state, elector)
    finally:
        if elector is not None:
            await elector.release()
        if kube is not None:
            await kube.close()
        if probes is not None:
            await probes.cleanup()


async def _lead(config: OperatorSettings, state: OperatorState,
                elector: LeaderElector | None) -> None:
    operator = asyncio.create_task(kopf.operator(
        clusterwide=config.namespace is None,
        namespaces=[config.namespace] if config.namespace else [],
        standalone=True,
        memo=kopf.Memo(config=config, state=state),
    ), name="kopf")
    if elector is None:
        await operator
        return
    keeper = asyncio.create_task(elector.keep(), name="leader-lease")
    done, _ = await asyncio.wait({operator, keeper}, return_when=asyncio.FIRST_COMPLETED)
    if keeper in done:
        # Lost the lease: stop now, before another leader acts; no cleanup may write.
        log.critical("exiting: this process is no longer the leader")
        logging.shutdown()
        os._exit(LOST_LEASE_EXIT)
    keeper.cancel()
    await asyncio.gather(keeper, return_exceptions=True)
    operator.result()
