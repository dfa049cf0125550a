"""The TTL reaper's loop with a recording stand-in for the API: order, forget, reschedule,
retry after a failed delete. Times are a few hundred milliseconds; every wait polls."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from conveyor_operator.kube import ObjectRef
from conveyor_operator.reaper import ExecutionReaper
from tests.support.polling import eventually


class RecordingKube:
    """Records deletions; the first ``failures`` calls raise."""

    def __init__(self, failures: int = 0) -> None:
        self.deleted: list[str] = []
        self.calls = 0
        self._failures = failures

    async def delete(self, ref: ObjectRef) -> bool:
        self.calls += 1
        if self.calls <= self._failures:
            raise ConnectionError("API server unreachable")
        self.deleted.append(ref.name)
        return True


def ref(name: str) -> ObjectRef:
    return ObjectRef("default", name, f"uid-{name}")


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_deletes_when_due_in_order_and_not_what_was_forgotten() -> None:
    kube = RecordingKube()
    reaper = ExecutionReaper(kube)  # type: ignore[arg-type]
    task = asyncio.create_task(reaper.run())
    try:
        reaper.schedule(ref("b"), later(0.4))
        reaper.schedule(ref("a"), later(0.2))
        reaper.schedule(ref("gone"), later(0.1))
        reaper.forget("uid-gone")           # deleted by a user meanwhile
        reaper.schedule(ref("moved"), later(0.1))
        reaper.schedule(ref("moved"), later(0.6))   # rescheduled: the later time holds
        assert reaper.scheduled("uid-moved") is not None
        await eventually(lambda: _value(kube.deleted), until=lambda d: len(d) == 3,
                         timeout=5, what="three deletions")
        assert kube.deleted == ["a", "b", "moved"]
        assert reaper.scheduled("uid-a") is None
    finally:
        task.cancel()


async def test_a_failed_delete_is_tried_again() -> None:
    kube = RecordingKube(failures=2)
    reaper = ExecutionReaper(kube, retry_seconds=0.05)  # type: ignore[arg-type]
    task = asyncio.create_task(reaper.run())
    try:
        reaper.schedule(ref("x"), later(0))
        await eventually(lambda: _value(kube.deleted), until=lambda d: d == ["x"], timeout=5,
                         what="the deletion to succeed on the third try")
        assert kube.calls == 3
    finally:
        task.cancel()


async def _value(value):
    return list(value)
