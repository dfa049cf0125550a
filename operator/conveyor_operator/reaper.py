"""Deletes finished Executions when their ``ttlSecondsAfterFinished`` is due (:mod:`.ttl`).

One loop and a heap of due times, so a thousand waiting deletions cost one sleeping task.
Deletes carry the object's uid as a precondition (Kubernetes ``DeleteOptions.preconditions``)
so a new object created under the same name is never deleted in its place. A deletion that
fails is tried again a little later; a missing object is forgotten.

It also reads the per-namespace default (:meth:`ExecutionReaper.namespace_default`, the
Namespace annotation of :data:`.ttl.NAMESPACE_ANNOTATION`) and reports a bad value.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
from datetime import UTC, datetime, timedelta

from kubernetes_asyncio.client.exceptions import ApiException

from .kube import Kube, ObjectRef
from .status import ttl_annotation_event
from .ttl import namespace_ttl, seconds_until

log = logging.getLogger(__name__)

#: Seconds before a failed deletion is tried again.
RETRY_SECONDS = 5.0


class ExecutionReaper:
    """Schedules and performs TTL deletions of Execution objects."""

    def __init__(self, kube: Kube, *, retry_seconds: float = RETRY_SECONDS) -> None:
        """``kube`` deletes (:meth:`Kube.delete`); a failed deletion is tried again after
        ``retry_seconds``."""
        self._kube = kube
        self._retry = retry_seconds
        self._heap: list[tuple[datetime, str]] = []
        self._due: dict[str, tuple[datetime, ObjectRef]] = {}
        self._wake = asyncio.Event()
        #: Bad annotation values already logged, by namespace; Executions already told.
        self._logged: dict[str, str] = {}
        self._told: set[str] = set()

    def schedule(self, ref: ObjectRef, due: datetime) -> None:
        """Delete the object ``ref`` names at ``due`` (aware); a later call for the same uid
        replaces the time."""
        self._due[ref.uid] = (due, ref)
        heapq.heappush(self._heap, (due, ref.uid))
        self._wake.set()

    def forget(self, uid: str) -> None:
        """Drop a scheduled deletion (the object is gone)."""
        self._due.pop(uid, None)
        self._told.discard(uid)

    async def namespace_default(self, ref: ObjectRef) -> int | None:
        """The default TTL that the Namespace of the Execution ``ref`` gives (its annotation
        :data:`.ttl.NAMESPACE_ANNOTATION`), or None (no annotation, no Namespace).

        A bad value counts as unset, so the Execution is kept: a WARNING line once per
        namespace and value, and one Warning Event ``InvalidTTLAnnotation`` on each
        Execution it concerns (once per object while this operator runs), so
        ``kubectl describe`` says why it stays. A 403 (RBAC without ``get`` on
        ``namespaces``) is logged once and also counts as unset; other API failures raise,
        as the reads of the Execution and its Workflow do (the caller's retry applies).
        """
        try:
            annotations = await self._kube.namespace_annotations(ref.namespace)
        except ApiException as exc:
            if exc.status != 403:
                raise
            if self._logged.get(ref.namespace) != "403":
                self._logged[ref.namespace] = "403"
                log.warning("cannot read namespace %s for its default ttlSecondsAfterFinished "
                            "(403: the operator needs get on namespaces); no namespace "
                            "default applies", ref.namespace)
            return None
        ttl, problem = namespace_ttl(annotations)
        if problem is None:
            self._logged.pop(ref.namespace, None)
            return ttl
        if self._logged.get(ref.namespace) != problem:
            self._logged[ref.namespace] = problem
            log.warning("namespace %s: %s", ref.namespace, problem)
        if ref.uid not in self._told:
            self._told.add(ref.uid)
            await self._kube.post_event(ref, ttl_annotation_event(problem))
        return None

    def scheduled(self, uid: str) -> datetime | None:
        """When the object with ``uid`` is due for deletion, if scheduled."""
        entry = self._due.get(uid)
        return entry[0] if entry else None

    async def run(self) -> None:
        """Delete objects as they fall due, until cancelled."""
        while True:
            self._wake.clear()
            now = datetime.now(UTC)
            while self._heap and self._heap[0][0] <= now:
                due, uid = heapq.heappop(self._heap)
                entry = self._due.get(uid)
                if entry is None or entry[0] != due:
                    continue  # forgotten or rescheduled
                await self._delete(entry[1])
            timeout = seconds_until(self._heap[0][0], now) if self._heap else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    async def _delete(self, ref: ObjectRef) -> None:
        try:
            deleted = await self._kube.delete(ref)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("deleting finished %s %s/%s failed (%s); trying again in %gs",
                        ref.kind, ref.namespace, ref.name, exc, self._retry)
            self.schedule(ref, datetime.now(UTC) + timedelta(seconds=self._retry))
            return
        self._due.pop(ref.uid, None)
        if deleted:
            log.info("deleted finished %s %s/%s: its ttlSecondsAfterFinished ran out "
                     "(its history stays in PostgreSQL)", ref.kind, ref.namespace, ref.name)
