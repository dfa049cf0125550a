"""The TTL reaper's loop with a recording stand-in for the API: order, forget, reschedule,
retry after a failed delete. Times are a few hundred milliseconds; every wait polls."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes_asyncio.client.exceptions import ApiException

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


class NamespaceKube:
    """Namespaces' annotations by name (an exception instead: raised); records Events."""

    def __init__(self, namespaces: dict[str, dict[str, str] | Exception]) -> None:
        self.namespaces = namespaces
        self.events: list[tuple[str, str, str]] = []

    async def namespace_annotations(self, name: str) -> dict[str, str] | None:
        found = self.namespaces.get(name)
        if isinstance(found, Exception):
            raise found
        return found

    async def post_event(self, ref: ObjectRef, event: object) -> bool:
        self.events.append((ref.name, event.type, event.reason))  # type: ignore[attr-defined]
        return True


ANNOTATION = "conveyor.dev/ttl-seconds-after-finished"


async def test_namespace_default_reads_the_annotation() -> None:
    kube = NamespaceKube({"team": {ANNOTATION: "3600"}, "plain": {}})
    reaper = ExecutionReaper(kube)  # type: ignore[arg-type]
    assert await reaper.namespace_default(ObjectRef("team", "a", "u-a")) == 3600
    assert await reaper.namespace_default(ObjectRef("plain", "a", "u-b")) is None
    assert await reaper.namespace_default(ObjectRef("gone", "a", "u-c")) is None
    assert kube.events == []


async def test_a_bad_annotation_is_unset_logged_once_and_told_once_per_execution(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = NamespaceKube({"team": {ANNOTATION: "1h"}})
    reaper = ExecutionReaper(kube)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="conveyor_operator.reaper"):
        for name in ("a", "b", "a"):   # "a" twice: the follower may report a final twice
            assert await reaper.namespace_default(ObjectRef("team", name, f"u-{name}")) is None
    assert kube.events == [("a", "Warning", "InvalidTTLAnnotation"),
                           ("b", "Warning", "InvalidTTLAnnotation")]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "team" in lines[0] and "'1h'" in lines[0], lines
    # Fixed, then broken again: logged again.
    kube.namespaces["team"] = {ANNOTATION: "60"}
    assert await reaper.namespace_default(ObjectRef("team", "c", "u-c")) == 60
    kube.namespaces["team"] = {ANNOTATION: "-1"}
    with caplog.at_level(logging.WARNING, logger="conveyor_operator.reaper"):
        assert await reaper.namespace_default(ObjectRef("team", "d", "u-d")) is None
    assert len(caplog.records) == 2


async def test_forbidden_namespace_reads_are_unset_other_failures_raise(
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube = NamespaceKube({"locked": ApiException(status=403, reason="Forbidden"),
                          "broken": ApiException(status=500, reason="Internal")})
    reaper = ExecutionReaper(kube)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="conveyor_operator.reaper"):
        assert await reaper.namespace_default(ObjectRef("locked", "a", "u-a")) is None
        assert await reaper.namespace_default(ObjectRef("locked", "b", "u-b")) is None
    assert len(caplog.records) == 1 and "get on namespaces" in caplog.records[0].getMessage()
    with pytest.raises(ApiException):
        await reaper.namespace_default(ObjectRef("broken", "a", "u-c"))
