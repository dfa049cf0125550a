"""The operator's Lease, read and written through the API (the I/O of leader election).

:class:`LeaderElector` waits until it holds the Lease (:meth:`~LeaderElector.acquire`),
then renews it every ``retry_period`` seconds (:meth:`~LeaderElector.keep`), returning as
soon as it has not renewed for ``renew_deadline`` seconds: the caller must then stop acting
(the operator exits; the kubelet restarts it as a standby). Writes carry the Lease's
``resourceVersion``, so two candidates racing for an expired lease cannot both win: the
loser gets 409 Conflict and reads again. The decisions are in :mod:`.decision`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from .decision import LeaseAction, LeaseRecord, decide, must_stop, released

log = logging.getLogger(__name__)


class LeaderElector:
    """Candidate ``identity`` for the Lease ``namespace``/``name``.

    ``lease_duration`` (s) is what a standby waits after the last renewal before taking
    over; ``renew_deadline`` (s, shorter) is how long a leader keeps acting without a
    successful renewal; ``retry_period`` (s, shorter still) is the pace of both loops and
    the timeout of each API call.
    """

    def __init__(self, api: client.ApiClient, *, namespace: str, name: str, identity: str,
                 lease_duration: float, renew_deadline: float, retry_period: float) -> None:
        if not retry_period < renew_deadline < lease_duration:
            raise ValueError("leader election: expected retry_period < renew_deadline < "
                             f"lease_duration, got {retry_period}, {renew_deadline}, "
                             f"{lease_duration}")
        self._api = client.CoordinationV1Api(api)
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.retry_period = retry_period
        #: Monotonic time of the last successful create/acquire/renew (None: not leading).
        self.last_renewed: float | None = None
        self._seen_holder: str | None = None
        self._record: LeaseRecord | None = None

    @property
    def leading(self) -> bool:
        """True while this candidate holds the Lease and has renewed it in time."""
        return self.last_renewed is not None and not must_stop(
            self.last_renewed, time.monotonic(), self.renew_deadline)

    async def acquire(self) -> None:
        """Return once this candidate holds the Lease; API errors are retried."""
        while True:
            if await self.try_once():
                return
            await asyncio.sleep(self.retry_period)

    async def keep(self) -> None:
        """Renew the Lease until a renewal has not succeeded for ``renew_deadline``; return
        then (the caller stops acting). Cancel it to stop renewing."""
        while True:
            await asyncio.sleep(self.retry_period)
            if await self.try_once():
                continue
            assert self.last_renewed is not None
            if must_stop(self.last_renewed, time.monotonic(), self.renew_deadline):
                log.critical("lost the leader lease %s/%s: not renewed for %.1fs "
                             "(renew deadline %.1fs)", self.namespace, self.name,
                             time.monotonic() - self.last_renewed, self.renew_deadline)
                self.last_renewed = None
                return

    async def try_once(self) -> bool:
        """Read the Lease, decide, write; True when this candidate holds it afterwards."""
        try:
            found, version = await self._read()
            decision = decide(found, self.identity, datetime.now(UTC),
                              max(1, round(self.lease_duration)))
            if decision.action is LeaseAction.WAIT:
                if decision.holder != self._seen_holder:
                    log.info("standby: the lease %s/%s is held by %s", self.namespace,
                             self.name, decision.holder)
                    self._seen_holder = decision.holder
                return False
            assert decision.record is not None
            await self._write(decision.record, version)
        except ApiException as exc:
            if exc.status != 409:  # 409: another candidate wrote first; read again
                log.warning("leader lease %s/%s: %s %s", self.namespace, self.name,
                            exc.status, exc.reason)
            return False
        except (TimeoutError, OSError) as exc:
            log.warning("leader lease %s/%s: %s", self.namespace, self.name,
                        exc or type(exc).__name__)
            return False
        if decision.action is not LeaseAction.RENEW:
            log.info("leading: %s the lease %s/%s as %s", decision.action.value,
                     self.namespace, self.name, self.identity)
        self._record = decision.record
        self.last_renewed = time.monotonic()
        return True

    async def release(self) -> None:
        """On a graceful stop, give the Lease up so a standby takes over at once."""
        if self._record is None or self.last_renewed is None:
            return
        self.last_renewed = None
        try:
            found, version = await self._read(self.renew_deadline)
            if found is None or found.holder != self.identity:
                return
            await self._write(released(found, datetime.now(UTC)), version,
                              timeout=self.renew_deadline)
            log.info("released the lease %s/%s", self.namespace, self.name)
        except (ApiException, TimeoutError, OSError) as exc:
            log.warning("could not release the lease %s/%s: %r", self.namespace, self.name,
                        exc)

    async def _read(self, timeout: float | None = None) -> tuple[LeaseRecord | None, str | None]:
        try:
            lease = await self._api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=timeout or self.retry_period)
        except ApiException as exc:
            if exc.status == 404:
                return None, None
            raise
        spec = lease.spec
        record = LeaseRecord(
            holder=spec.holder_identity or None,
            duration_seconds=int(spec.lease_duration_seconds or 0),
            acquire_time=spec.acquire_time, renew_time=spec.renew_time,
            transitions=int(spec.lease_transitions or 0))
        return record, lease.metadata.resource_version

    async def _write(self, record: LeaseRecord, version: str | None,
                     timeout: float | None = None) -> None:
        body: dict[str, Any] = {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": record.to_spec(),
        }
        if version is None:
            await self._api.create_namespaced_lease(self.namespace, body,
                                                    _request_timeout=timeout or self.retry_period)
        else:
            body["metadata"]["resourceVersion"] = version
            await self._api.replace_namespaced_lease(self.name, self.namespace, body,
                                                     _request_timeout=timeout or self.retry_period)
