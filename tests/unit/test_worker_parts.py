"""The worker's pure parts: in-flight bookkeeping, dead-letter decisions, outcome records."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.compiler import compile_workflow
from conveyor_engine.phases import AttemptOutcome, TaskPhase
from conveyor_engine.progress import SkippedByCondition
from conveyor_engine.queue import Delivery
from conveyor_engine.store import HeldClaim, TaskRef
from conveyor_engine.tasktypes.base import Failed, Succeeded
from conveyor_engine.worker.contact import Contact, takeover_allowed
from conveyor_engine.worker.inflight import InFlight, Stop
from conveyor_engine.worker.outcome import (
    failed_for_good,
    lost_record,
    outcome_label,
    outcome_record,
)
from conveyor_engine.worker.reclaim import dead_letter_reason, split_dead

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def delivery(message_id: str, execution: str = "e") -> Delivery:
    return Delivery(message_id, TaskRef(execution, f"t{message_id}", 1))


# -- in-flight bookkeeping ---------------------------------------------------------------------


def test_an_entry_runs_then_waits_for_its_ack() -> None:
    inflight = InFlight()
    inflight.hold(delivery("1"))
    inflight.hold(delivery("2"))
    assert (len(inflight), inflight.free(4), inflight.unacked()) == (2, 2, ["1", "2"])
    inflight.slot_freed.clear()
    inflight.finish("1")
    assert inflight.slot_freed.is_set(), "a waiting fetch loop must wake"
    assert (len(inflight), inflight.unacked()) == (1, ["1", "2"]), "unacked until committed"
    inflight.acked(["1"])
    assert inflight.unacked() == ["2"]


def test_unrun_entries_are_only_acked_and_abandoned_ones_forgotten() -> None:
    inflight = InFlight()
    inflight.hold_unrun("9")
    assert (len(inflight), inflight.unacked()) == (0, ["9"])
    inflight.hold(delivery("1"))
    inflight.slot_freed.clear()
    inflight.abandon(["1", "9"])
    assert (len(inflight), inflight.unacked(), inflight.slot_freed.is_set()) == (0, [], True)


def test_entries_by_execution_and_free_slots_after_a_takeover() -> None:
    inflight = InFlight()
    for message_id, execution in (("1", "a"), ("2", "b"), ("3", "a")):
        inflight.hold(delivery(message_id, execution))
    assert [e.delivery.message_id for e in inflight.of_execution("a")] == ["1", "3"]
    assert inflight.of_execution("nope") == []
    assert inflight.free(2) == -1
    assert inflight.get("2").delivery.ref.execution_id == "b"
    with pytest.raises(KeyError):
        inflight.get("4")


async def test_stops_cancel_the_task_and_say_why() -> None:
    inflight = InFlight()
    entry = inflight.hold(delivery("1"))
    entry.cancel("by the user")  # no task yet: the stop alone must keep it from running
    assert (entry.stop, entry.cancelled_message) == (Stop.CANCELLED, "cancelled: by the user")
    entry.task = asyncio.create_task(asyncio.sleep(60))
    entry.hand_back()
    assert entry.stop is Stop.HANDED_BACK
    with pytest.raises(asyncio.CancelledError):
        await entry.task


def test_a_cancellation_reason_cannot_pass_for_a_hand_back() -> None:
    entry = InFlight().hold(delivery("1"))
    entry.cancel("handback")  # the old string sentinel: now only a reason
    assert entry.stop is Stop.CANCELLED


# -- reclaim decisions ------------------------------------------------------------------------


@pytest.mark.parametrize(("times", "limit", "alive", "dead"), [
    ({}, 3, ["1", "2"], []),
    ({"1": 2, "2": 3}, 3, ["1"], ["2"]),
    ({"1": 5, "2": 9}, 3, [], ["1", "2"]),
    ({"1": 1}, 1, ["2"], ["1"]),
])
def test_split_dead(times: dict[str, int], limit: int, alive: list[str], dead: list[str]
                    ) -> None:
    found = split_dead([delivery("1"), delivery("2")], times, limit)
    assert ([d.message_id for d in found[0]], [d.message_id for d in found[1]]) == (alive, dead)


def test_dead_letter_reason() -> None:
    assert dead_letter_reason(4, 3) == (
        "delivered 4 times without an outcome (limit 3); moved to the dead-letter stream")


# -- outcome records --------------------------------------------------------------------------

WORKFLOW = compile_workflow("w", {"tasks": [
    {"name": "a", "type": "set", "retry": {"limit": 2, "backoff": "2s", "factor": 3,
                                           "maxBackoff": "1m", "jitter": "None"}},
    {"name": "b", "type": "set", "dependsOn": ["a"]},
    {"name": "c", "type": "set", "dependsOn": ["b"]},
]})
A = WORKFLOW.tasks["a"]


@pytest.mark.parametrize(("attempt", "outcome", "task", "retries", "phase", "due"), [
    (1, Succeeded({"x": 1}), A, True, TaskPhase.SUCCEEDED, None),
    (1, SkippedByCondition("false"), A, True, TaskPhase.SKIPPED, None),
    # the task's retry policy: backoff 2s, then 6s; the third failure is final
    (1, Failed("boom"), A, True, TaskPhase.WAITING, NOW + timedelta(seconds=2)),
    (2, Failed("boom"), A, True, TaskPhase.WAITING, NOW + timedelta(seconds=6)),
    (3, Failed("boom"), A, True, TaskPhase.FAILED, None),
    # without retries (internal errors, tasks that cannot run) every failure is final
    (1, Failed("boom"), A, False, TaskPhase.FAILED, None),
    (1, Failed("boom"), None, True, TaskPhase.FAILED, None),
])
def test_outcome_record(attempt: int, outcome: object, task: object, retries: bool,
                        phase: TaskPhase, due: datetime | None) -> None:
    ref = TaskRef("e", "a", attempt)
    record = outcome_record(ref, outcome, worker="w1", started=NOW - timedelta(seconds=1),
                            finished=NOW, workflow=WORKFLOW, task=task, retries=retries)
    assert (record.ref, record.worker, record.started_at, record.finished_at) == (
        ref, "w1", NOW - timedelta(seconds=1), NOW)
    assert (record.transition.phase, record.transition.due_at) == (phase, due)
    if task is None:
        assert (record.dependents, record.downstream) == ((), ())
    else:
        assert (record.dependents, set(record.downstream)) == (("b",), {"b", "c"})


def test_outcome_record_of_a_failed_attempt_records_the_attempt() -> None:
    record = outcome_record(TaskRef("e", "a", 1), Failed("boom"), worker="w", started=NOW,
                            finished=NOW, workflow=None, task=None)
    assert record.transition.attempt_outcome is AttemptOutcome.FAILED
    assert record.downstream == ()


@pytest.mark.parametrize(("outcome", "label"), [
    (Succeeded(), "succeeded"),
    (Failed("x"), "failed"),
    (SkippedByCondition("false"), "skipped"),
])
def test_outcome_label(outcome: object, label: str) -> None:
    assert outcome_label(outcome) == label


def test_failed_for_good_keeps_everything_but_the_outcome() -> None:
    ok = outcome_record(TaskRef("e", "a", 2), Succeeded({"x": 1}), worker="w", started=NOW,
                        finished=NOW, workflow=WORKFLOW, task=A)
    failed = failed_for_good(ok, "outcome cannot be stored: boom")
    assert (failed.ref, failed.worker, failed.dependents, failed.downstream) == (
        ok.ref, ok.worker, ok.dependents, ok.downstream)
    assert (failed.transition.phase, failed.transition.error) == (
        TaskPhase.FAILED, "outcome cannot be stored: boom")


# -- takeovers wait for steady contact with both stores (issue 9, item 1) ---------------------


@pytest.mark.parametrize(("down", "steady", "lease", "allowed"), [
    (False, 30.0, 30.0, True),    # both stores answered for a whole lease
    (False, 29.9, 30.0, False),   # just back: live owners have not renewed yet
    (True, 100.0, 30.0, False),   # a store is down: nothing may be taken over
    (False, 0.0, 1.0, False),     # a worker that just started
])
def test_takeover_allowed(down: bool, steady: float, lease: float, allowed: bool) -> None:
    assert takeover_allowed(down=down, steady_seconds=steady, lease_seconds=lease) is allowed


def test_contact_counts_steady_time_from_the_last_recovery() -> None:
    now = [100.0]
    contact = Contact(clock=lambda: now[0])
    assert not contact.takeover_allowed(10)  # start counts as a recovery
    now[0] = 110.0
    assert contact.takeover_allowed(10)
    assert contact.failed("redis") and not contact.failed("redis")  # True once per outage
    assert contact.down == {"redis"} and not contact.takeover_allowed(10)
    now[0] = 150.0
    assert contact.ok("redis") and not contact.ok("redis")
    assert not contact.takeover_allowed(10)
    now[0] = 160.0
    assert contact.takeover_allowed(10)


def test_lost_record_takes_over_the_held_claim() -> None:
    held = HeldClaim(TaskRef("e", "a", 1), "w0", 7, NOW - timedelta(seconds=9),
                     NOW - timedelta(seconds=2), "sha256:x", "w")
    record = lost_record(held, error="gone", now=NOW, lease_before=NOW, workflow=WORKFLOW)
    assert (record.worker, record.claim, record.lease_before, record.started_at) == (
        "w0", 7, NOW, NOW - timedelta(seconds=9))
    assert (record.transition.phase, record.transition.attempt_outcome,
            record.transition.reason) == (TaskPhase.WAITING, AttemptOutcome.LOST, "WorkerLost")
    dead = lost_record(held, error="gone", now=NOW, lease_before=NOW, workflow=None,
                       retryable=False)
    assert dead.transition.phase == TaskPhase.FAILED and dead.downstream == ()


def test_a_worker_keeps_as_many_compiled_workflows_as_its_setting_says() -> None:
    from redis.asyncio import Redis

    from conveyor_engine.settings import EngineSettings
    from conveyor_engine.worker.worker import Worker

    redis = Redis.from_url("redis://127.0.0.1:1/0")  # never connected: construction only
    worker = Worker(EngineSettings(workflow_cache_size=3), None, redis)  # type: ignore[arg-type]
    assert worker.catalog.max_size == 3


@pytest.mark.parametrize(("running_here", "handed_back"), [(True, False), (False, True)])
async def test_an_own_claim_nothing_runs_is_handed_back(running_here: bool,
                                                        handed_back: bool) -> None:
    """A claim this worker committed while the reply was lost in an outage is Running in
    PostgreSQL under this worker, which renews its lease forever: the reclaimer hands it back
    (seen once in CI: an execution stuck Running after a PostgreSQL cut)."""
    from conveyor_engine.worker.reclaim import Reclaimer

    ref = TaskRef("e1", "t", 1)
    delivery = Delivery("1-0", ref)
    inflight = InFlight()
    if running_here:
        inflight.hold(Delivery("2-0", ref))
    calls: list[list[Delivery]] = []

    async def hand_back(deliveries: list[Delivery]) -> None:
        calls.append(deliveries)

    reclaimer = Reclaimer(
        store=None, queue=None, loader=None, committer=None,  # type: ignore[arg-type]
        inflight=inflight, pool="p", consumer="me", slots=4, lease_seconds=1.0,
        max_deliveries=5, start=hand_back, fail=None, catalog=None,  # type: ignore[arg-type]
        hand_back=hand_back)
    held = HeldClaim(ref, "me", 7, None, None, "h", "w")
    await reclaimer._take_over_lost(delivery, held, 1)
    assert calls == ([[delivery]] if handed_back else [])
