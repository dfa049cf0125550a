"""The stream entries a worker holds: which attempts run, which entries await their ack.

Two sets with different lifetimes, kept in one place so they cannot drift apart:

* running: an entry claimed and not yet finished (it takes one of the worker's slots);
* unacknowledged: every entry read and not yet acknowledged, finished ones included (their
  outcome waits in the committer). Their stream leases are renewed until the ack.

Not thread-safe; used from the worker's event loop only.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from enum import Enum

from ..queue import Delivery


class Stop(Enum):
    """Why a running attempt was stopped before it finished."""

    #: Its execution was cancelled: the attempt is recorded as Failed ("cancelled: ...").
    CANCELLED = "cancelled"
    #: The worker is shutting down: the attempt goes back to the queue, nothing is recorded.
    HANDED_BACK = "handed back"


@dataclass(slots=True)
class Running:
    """One claimed entry: its delivery, its asyncio task once started, and any stop.

    ``task`` is None while the attempt's context is still loading; ``reason`` is the
    cancellation's reason when ``stop`` is :attr:`Stop.CANCELLED`; ``claim`` is the fencing
    token PostgreSQL gave the claim (None until claimed), which its outcome carries.
    """

    delivery: Delivery
    task: asyncio.Task | None = None
    stop: Stop | None = None
    reason: str | None = None
    claim: int | None = None

    def cancel(self, reason: str) -> None:
        """Stop the attempt because its execution was cancelled (no-op on the task if the
        attempt has not started: the stop alone keeps it from running)."""
        self.stop, self.reason = Stop.CANCELLED, reason
        if self.task is not None:
            self.task.cancel()

    def hand_back(self) -> None:
        """Stop a started attempt so it can be handed back to the queue (shutdown)."""
        self.stop = Stop.HANDED_BACK
        if self.task is not None:
            self.task.cancel()

    @property
    def cancelled_message(self) -> str:
        """The error recorded for an attempt stopped by a cancellation."""
        return f"cancelled: {self.reason}"


class InFlight:
    """Running attempts and unacknowledged entries of one worker, by stream entry id.

    ``slot_freed`` is set whenever a running attempt ends (or on :meth:`wake`), so a fetch
    loop waiting for a free slot can move on.
    """

    def __init__(self) -> None:
        self._running: dict[str, Running] = {}
        self._unacked: set[str] = set()
        self.slot_freed = asyncio.Event()

    def __len__(self) -> int:
        """How many attempts are running."""
        return len(self._running)

    def free(self, slots: int) -> int:
        """Slots left of ``slots`` (may be negative right after a takeover)."""
        return slots - len(self._running)

    def hold(self, delivery: Delivery) -> Running:
        """Track a delivery about to be claimed: running and unacknowledged."""
        entry = Running(delivery)
        self._running[delivery.message_id] = entry
        self._unacked.add(delivery.message_id)
        return entry

    def hold_unrun(self, message_id: str) -> None:
        """Track an entry that will not run but must still be acknowledged (a malformed
        entry, a dead letter): its lease is renewed until the committer acks it."""
        self._unacked.add(message_id)

    def get(self, message_id: str) -> Running:
        """The running entry ``message_id``; ``KeyError`` if it is not running."""
        return self._running[message_id]

    def entries(self) -> list[Running]:
        """A snapshot of the running entries."""
        return list(self._running.values())

    def of_execution(self, execution_id: str) -> list[Running]:
        """The running entries of one execution."""
        return [e for e in self._running.values() if e.delivery.ref.execution_id == execution_id]

    def unacked(self) -> list[str]:
        """Ids of every entry not yet acknowledged, sorted (for lease renewal)."""
        return sorted(self._unacked)

    def finish(self, message_id: str) -> None:
        """An attempt stopped running; its entry stays unacknowledged until :meth:`acked`."""
        self._running.pop(message_id, None)
        self.slot_freed.set()

    def acked(self, message_ids: list[str]) -> None:
        """The committer acknowledged these entries: stop renewing their leases."""
        self._unacked.difference_update(message_ids)

    def abandon(self, message_ids: list[str]) -> None:
        """Forget entries without acking them: their leases lapse and they are taken over
        (or they were handed back and acknowledged by the caller)."""
        for message_id in message_ids:
            self._running.pop(message_id, None)
            self._unacked.discard(message_id)
        self.slot_freed.set()

    def wake(self) -> None:
        """Wake a fetch loop waiting for a slot (on stop)."""
        self.slot_freed.set()
