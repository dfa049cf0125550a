"""One look of a Schedule's timer against a fake API: Replace cancels the open run through
``spec.cancel`` before creating, a 409 AlreadyExists counts as created (no second Event),
and Forbid skips with an Event. (The end-to-end tests cover the rest with a real API.)"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor_operator.clock import Clock
from conveyor_operator.kube import ObjectRef
from conveyor_operator.schedules.runner import ScheduleRunner, _Entry
from conveyor_operator.schedules.runs import SCHEDULE_LABEL, SCHEDULED_TIME_ANNOTATION

NOW = datetime(2026, 1, 1, 0, 1, 2, tzinfo=UTC)


class FixedClock(Clock):
    def now(self) -> datetime:
        return NOW


class FakeKube:
    """The calls the runner makes, recorded; ``exists`` makes ``create`` answer 409."""

    def __init__(self, executions: list[dict[str, Any]], exists: bool = False) -> None:
        self.executions = executions
        self.exists = exists
        self.created: list[dict[str, Any]] = []
        self.spec_patches: list[tuple[str, dict[str, Any]]] = []
        self.events: list[tuple[str, str]] = []
        self.status: dict[str, Any] = {}

    async def get(self, namespace: str, plural: str, name: str) -> dict[str, Any] | None:
        return {"metadata": {"name": name}}  # the Workflow exists

    async def list_objects(self, plural: str, namespace: str | None,
                           label_selector: str | None = None) -> list[dict[str, Any]]:
        return self.executions

    async def create(self, namespace: str, plural: str, body: dict[str, Any]) -> dict | None:
        if self.exists:
            return None
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "uid": "new-uid"}}

    async def patch_spec(self, ref: ObjectRef, spec: dict[str, Any]) -> bool:
        self.spec_patches.append((ref.name, spec))
        return True

    async def patch_status(self, ref: ObjectRef, patch: dict[str, Any], known: dict) -> bool:
        self.status.update(patch)
        return True

    async def post_event(self, ref: ObjectRef, event: Any) -> bool:
        self.events.append((event.reason, event.message))
        return True

    async def delete(self, ref: ObjectRef) -> bool:
        return True


def open_run() -> dict[str, Any]:
    return {"metadata": {"name": "every-29453760", "uid": "old-uid",
                         "labels": {SCHEDULE_LABEL: "every"},
                         "annotations": {SCHEDULED_TIME_ANNOTATION: "2026-01-01T00:00:00Z"},
                         "ownerReferences": [{"uid": "s-uid", "controller": True}]},
            "status": {"phase": "Running"}}


def entry(policy: str) -> _Entry:
    body = {"metadata": {"name": "every", "namespace": "default", "uid": "s-uid",
                         "generation": 1},
            "spec": {"workflowRef": {"name": "w"}, "schedule": "* * * * *",
                     "concurrencyPolicy": policy},
            "status": {"lastTickTime": "2026-01-01T00:00:00Z"}}
    ref = ObjectRef("default", "every", "s-uid", kind="Schedule", plural="schedules")
    return _Entry(ref, body, dict(body["status"]))


@pytest.mark.parametrize(("policy", "exists", "created", "patched", "reasons"), [
    ("Replace", False, ["every-29453761"], [("every-29453760", {"cancel": True})],
     ["RunReplaced", "RunCreated"]),
    ("Forbid", False, [], [], ["PreviousRunActive"]),
    ("Allow", False, ["every-29453761"], [], ["RunCreated"]),
    ("Allow", True, [], [], []),  # 409: created before; no second Event
])
async def test_one_look(policy: str, exists: bool, created: list[str],
                        patched: list[tuple[str, dict]], reasons: list[str]) -> None:
    kube = FakeKube([open_run()], exists=exists)
    runner = ScheduleRunner(kube, FixedClock())  # type: ignore[arg-type]
    due = await runner._look(entry(policy))
    assert [c["metadata"]["name"] for c in kube.created] == created
    assert kube.spec_patches == patched
    assert [reason for reason, _ in kube.events] == reasons
    assert due == datetime(2026, 1, 1, 0, 2, tzinfo=UTC)
    assert kube.status["lastTickTime"] == "2026-01-01T00:01:00Z"
    assert kube.status["nextScheduleTime"] == "2026-01-01T00:02:00Z"
    if created or exists:
        assert kube.status["lastScheduleTime"] == "2026-01-01T00:01:00Z"


async def test_bad_inputs_are_reported_when_read_not_at_the_first_tick() -> None:
    """A template other than the scheduled time in ``spec.inputs`` makes the Schedule
    ``InvalidSpec`` at once, with no next run promised and nothing created."""
    bad = entry("Allow")
    bad.body["spec"]["inputs"] = {"day": "${{ inputs.other }}"}
    bad.body["spec"]["schedule"] = "0 0 1 1 *"  # the first tick is a year away
    kube = FakeKube([])
    runner = ScheduleRunner(kube, FixedClock())  # type: ignore[arg-type]
    assert await runner._look(bad) is None
    assert kube.created == []
    ready = next(c for c in kube.status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.inputs.day" in ready["message"]
    assert kube.status.get("nextScheduleTime") is None
