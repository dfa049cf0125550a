"""Executions waiting to start (for their Workflow, its compilation, or a pool), held in
memory and re-checked when something they wait for changes, at no API write while nothing
does.

kopf's way to wait, a handler raising :class:`kopf.TemporaryError`, cost three API writes
per retry (progress annotations, status, the wake-up patch) forever, and the retry
bookkeeping grew. Instead the handler writes the waiting status once and hands the
Execution to :class:`WaitingExecutions`. It re-checks an entry when poked (a Workflow was
compiled, a pool appeared or changed: :meth:`~WaitingExecutions.poke`) and otherwise at an
exponentially growing interval (``first``, doubling, capped at ``cap`` seconds) as a safety
net. A re-check reads the Workflow (one GET) and writes only when the wait's reason or
message changed; once the Execution can start, it is submitted and handed to the follower.
On an operator restart kopf's resume handler hands every still-waiting Execution over
again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes_asyncio.client.exceptions import ApiException

from .kube import Kube, ObjectRef
from .status import Waiting, execution_status, status_patch

log = logging.getLogger(__name__)

#: ``start(entry)`` tries to start a waiting Execution: None when it started (or can never
#: start and was failed), else why it still waits.
Starter = Callable[["WaitingExecution"], Awaitable[Waiting | None]]


def next_delay(previous: float | None, first: float, cap: float) -> float:
    """The re-check interval after ``previous`` (None: the first): ``first``, then doubled,
    at most ``cap`` seconds."""
    return first if previous is None else min(previous * 2, cap)


@dataclass
class WaitingExecution:
    """One waiting Execution: its object, spec, the status last written and the wait."""

    ref: ObjectRef
    generation: int | None
    spec: Any  # the ExecutionSpec (its lifecycle fields may change while it waits)
    status: dict[str, Any]
    waiting: Waiting
    delay: float | None = None
    due: float = field(default_factory=time.monotonic)
    #: The Schedule tick that created it (its annotation), for ``execution.scheduledTime``.
    scheduled_time: datetime | None = None


class WaitingExecutions:
    """The Executions waiting to start; :meth:`run` re-checks them until cancelled."""

    def __init__(self, kube: Kube, start: Starter, *, first: float, cap: float) -> None:
        self._kube = kube
        self._start = start
        self.first = first
        self.cap = cap
        self._waiting: dict[str, WaitingExecution] = {}
        self._poked = asyncio.Event()

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, entry: WaitingExecution) -> None:
        """Hold ``entry`` (keyed by the object's uid); first re-check after ``first`` s."""
        entry.delay = next_delay(None, self.first, self.cap)
        entry.due = time.monotonic() + entry.delay
        self._waiting[entry.ref.uid] = entry

    def reasons(self) -> list[str]:
        """The reason each waiting Execution waits for (``WorkflowNotFound``, ...)."""
        return [entry.waiting.reason for entry in self._waiting.values()]

    def get(self, uid: str) -> WaitingExecution | None:
        """The waiting entry of the object ``uid``, or None when it is not waiting."""
        return self._waiting.get(uid)

    def forget(self, uid: str) -> None:
        """Stop waiting for the object ``uid`` (deleted, or started by its handler)."""
        self._waiting.pop(uid, None)

    def poke(self) -> None:
        """Something waited for may have changed: re-check every entry now."""
        now = time.monotonic()
        for entry in self._waiting.values():
            entry.due = now
            entry.delay = None
        self._poked.set()

    async def run(self) -> None:
        """Re-check due entries until cancelled."""
        while True:
            now = time.monotonic()
            due = [e for e in self._waiting.values() if e.due <= now]
            for entry in due:
                await self._check(entry)
            wake = min((e.due for e in self._waiting.values()), default=now + self.cap)
            self._poked.clear()
            try:
                await asyncio.wait_for(self._poked.wait(), max(0.0, wake - time.monotonic()))
            except TimeoutError:
                pass

    async def _check(self, entry: WaitingExecution) -> None:
        uid = entry.ref.uid
        try:
            still = await self._start(entry)
        except Exception:  # the next look tries again; never stop the loop
            log.exception("execution %s/%s: checking whether it can start failed",
                          entry.ref.namespace, entry.ref.name)
            still = entry.waiting
        if self._waiting.get(uid) is not entry:
            return  # forgotten meanwhile
        if still is None:
            self._waiting.pop(uid, None)
            return
        if still != entry.waiting:
            desired = execution_status(generation=entry.generation, state=None,
                                       previous=entry.status, now=datetime.now(UTC),
                                       waiting=still)
            patch = status_patch(entry.status, desired)
            written: bool | None = True
            if patch:
                try:
                    written = await self._kube.patch_status(entry.ref, patch,
                                                            known=entry.status)
                except ApiException as exc:  # tried again on the next look
                    log.warning("execution %s/%s: waiting status not written: %s",
                                entry.ref.namespace, entry.ref.name, exc.status)
                    written = None
            if written is False:  # the object is gone or was replaced
                self._waiting.pop(uid, None)
                return
            if written:
                entry.status = {k: v for k, v in {**entry.status, **patch}.items()
                                if v is not None}
                entry.waiting = still
        entry.delay = next_delay(entry.delay, self.first, self.cap)
        entry.due = time.monotonic() + entry.delay
