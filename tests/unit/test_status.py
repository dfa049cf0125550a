"""Status building for Workflows and Executions (pure), as tables."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from conveyor_operator.status import (
    Condition,
    PhaseEvent,
    Waiting,
    execution_status,
    format_duration,
    merge_conditions,
    phase_events,
    refused_event,
    rfc3339,
    status_json_patch,
    status_patch,
)
from conveyor_operator.waitcount import waiting_samples
from tests.support.factories import execution_state

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0ms"), (0.85, "850ms"), (1, "1s"), (59.9, "59s"), (61, "1m1s"), (3723, "1h2m3s")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_transition_time_moves_only_when_status_changes() -> None:
    earlier = NOW - timedelta(minutes=5)
    first = merge_conditions(None, [Condition("Ready", False, "Running", "1/3")],
                             generation=1, now=earlier)
    same = merge_conditions(first, [Condition("Ready", False, "Running", "2/3")],
                            generation=1, now=NOW)
    flipped = merge_conditions(same, [Condition("Ready", True, "Succeeded", "3/3")],
                               generation=1, now=NOW)
    assert same[0]["lastTransitionTime"] == rfc3339(earlier)
    assert same[0]["message"] == "2/3"
    assert flipped[0] == {"type": "Ready", "status": "True", "reason": "Succeeded",
                          "message": "3/3", "lastTransitionTime": rfc3339(NOW),
                          "observedGeneration": 1}


@pytest.mark.parametrize(
    ("phase", "conditions"),
    [
        ("Running", {"Ready": ("False", "Running"), "Reconciling": ("True", "Running")}),
        ("Succeeded", {"Ready": ("True", "Succeeded")}),
        ("Failed", {"Ready": ("False", "Failed"), "Stalled": ("True", "TaskFailed")}),
        ("Cancelled", {"Ready": ("False", "Cancelled"), "Stalled": ("True", "Cancelled")}),
    ],
)
def test_execution_conditions_follow_kstatus(phase: str, conditions: dict) -> None:
    status = execution_status(generation=4, state=execution_state(3, phase), previous=None, now=NOW)
    found = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
    assert found == conditions
    assert all(c["observedGeneration"] == 4 for c in status["conditions"])
    assert status["observedGeneration"] == 4


@pytest.mark.parametrize(("phase", "suspended", "before", "conditions", "prefixed"), [
    # suspended while open: not Ready, Suspended, no Reconciling (nothing new starts)
    ("Running", True, None,
     {"Ready": ("False", "Suspended"), "Suspended": ("True", "Suspended")}, True),
    ("Pending", True, None,
     {"Ready": ("False", "Suspended"), "Suspended": ("True", "Suspended")}, True),
    # resumed: the open run's usual conditions, and Suspended=False
    ("Running", False, "Suspended",
     {"Ready": ("False", "Running"), "Reconciling": ("True", "Running"),
      "Suspended": ("False", "Resumed")}, False),
    # a run that finished while suspended (its running tasks ended): its final conditions
    ("Succeeded", True, "Suspended", {"Ready": ("True", "Succeeded")}, False),
    # cancelled while suspended: it did not continue, so no "Resumed"
    ("Cancelled", True, "Suspended",
     {"Ready": ("False", "Cancelled"), "Stalled": ("True", "Cancelled")}, False),
    # never suspended: no Suspended condition at all
    ("Running", False, None,
     {"Ready": ("False", "Running"), "Reconciling": ("True", "Running")}, False),
])
def test_suspension_is_a_condition(phase: str, suspended: bool, before: str | None,
                                   conditions: dict, prefixed: bool) -> None:
    previous = {"conditions": [{"type": before, "status": "True", "reason": "Suspended",
                                "lastTransitionTime": "2026-03-01T11:00:00Z"}]} if before else None
    state = replace(execution_state(3, phase), suspended=suspended)
    status = execution_status(generation=2, state=state, previous=previous, now=NOW)
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]} == conditions
    assert status["message"].startswith("suspended: ") is prefixed
    assert status["phase"] == phase  # the engine's phase is kept


def test_retries_appear_once_a_run_was_retried() -> None:
    assert execution_status(generation=1, state=execution_state(2, "Running"), previous=None,
                            now=NOW)["retries"] is None
    retried = replace(execution_state(2, "Running"), retries=2)
    assert execution_status(generation=1, state=retried, previous=None,
                            now=NOW)["retries"] == 2


def test_execution_status_summarises_and_bounds_tasks() -> None:
    state = execution_state(80, "Failed")
    status = execution_status(generation=1, state=state, previous=None, now=NOW)
    assert status["progress"] == "79/80"
    assert status["duration"] == "1m15s"
    assert len(status["tasks"]) == 50 and status["tasksOmitted"] == 30
    assert len(status["tasks"][0]["message"]) == 256
    assert "task 't0'" in status["message"] and len(status["message"]) <= 1024


LOST = "WorkerLost: worker w-1 stopped renewing its lease"


@pytest.mark.parametrize(("changes", "summary"), [
    # A task failed because its last attempt was lost: the engine's reason is on status.
    ({"phase": "Failed", "attempt": 2, "error": LOST, "reason": "WorkerLost"},
     {"phase": "Failed", "attempts": 2, "message": LOST, "reason": "WorkerLost"}),
    # Lost, waiting for its retry: the reason shows while it waits.
    ({"phase": "Waiting", "finished_at": None, "message": "attempt 1 lost, retry 1 of 2",
      "reason": "WorkerLost"},
     {"phase": "Waiting", "attempts": 1, "message": "attempt 1 lost, retry 1 of 2",
      "reason": "WorkerLost"}),
    # No reason recorded: no key (status stays small).
    ({"phase": "Failed", "error": "HTTP 500", "reason": None},
     {"phase": "Failed", "attempts": 1, "message": "HTTP 500"}),
    ({"phase": "Succeeded"}, {"phase": "Succeeded", "attempts": 1}),
    ({"phase": "Running", "finished_at": None, "attempt": 2, "reason": None},
     {"phase": "Running", "attempts": 2}),
])
def test_task_summaries_carry_the_engines_reason(changes: dict, summary: dict) -> None:
    state = execution_state(1, "Running")
    task = replace(state.tasks[0], **{"error": None, **changes})
    status = execution_status(generation=1, state=replace(state, tasks=(task,)),
                              previous=None, now=NOW)
    (item,) = status["tasks"]
    times = {"startedAt": rfc3339(task.started_at)}
    if task.finished_at:
        times["finishedAt"] = rfc3339(task.finished_at)
    assert item == {"name": "t0", **times, **summary}


@pytest.mark.parametrize(
    ("waiting", "phase", "types"),
    [
        (Waiting("WorkflowNotFound", "workflow 'x' not found"), "Pending",
         ["Ready", "Reconciling"]),
        (Waiting("InvalidInputs", "inputs.x: required input is missing", final=True), "Failed",
         ["Ready", "Stalled"]),
    ],
)
def test_unsubmitted_execution_says_why(waiting: Waiting, phase: str, types: list[str]) -> None:
    status = execution_status(generation=1, state=None, previous=None, now=NOW, waiting=waiting)
    assert status["phase"] == phase
    assert [c["type"] for c in status["conditions"]] == types
    assert all(c["reason"] == waiting.reason and c["message"] == waiting.message
               for c in status["conditions"])


@pytest.mark.parametrize(
    ("before", "after", "reasons"),
    [
        (None, "Pending", []),
        ("Pending", "Running", ["Started"]),
        (None, "Running", ["Started"]),
        ("Running", "Running", []),
        ("Running", "Succeeded", ["Succeeded"]),
        ("Pending", "Succeeded", ["Started", "Succeeded"]),
        ("Running", "Failed", ["Failed"]),
        ("Pending", "Cancelled", ["Cancelled"]),
        ("Succeeded", "Succeeded", []),
    ],
)
def test_phase_events(before: str | None, after: str, reasons: list[str]) -> None:
    events = phase_events(before, after, "msg")
    assert [e.reason for e in events] == reasons
    if "Failed" in reasons:
        assert events[-1] == PhaseEvent("Warning", "Failed", "msg")


def test_a_refused_execution_gets_one_failed_warning() -> None:
    assert refused_event("input 'x' is not declared") == PhaseEvent(
        "Warning", "Failed", "input 'x' is not declared")


UID_TEST = {"op": "test", "path": "/metadata/uid", "value": "u-1"}


@pytest.mark.parametrize(
    ("uid", "patch", "present", "ops"),
    [
        # A new object has no status: the whole status is added at once, None dropped.
        ("u-1", {"phase": "Running", "message": None}, None,
         [UID_TEST, {"op": "add", "path": "/status", "value": {"phase": "Running"}}]),
        # Keys are added or replaced ("add" replaces an existing member, RFC 6902 4.1).
        ("u-1", {"phase": "Running"}, {"phase"},
         [UID_TEST, {"op": "add", "path": "/status/phase", "value": "Running"}]),
        # None removes a present key and is dropped for an absent one (remove would fail).
        ("u-1", {"finishedAt": None, "message": None}, {"finishedAt"},
         [UID_TEST, {"op": "remove", "path": "/status/finishedAt"}]),
        # Keys are JSON-pointer escaped (RFC 6901).
        ("u-1", {"a/b~c": 1}, set(),
         [UID_TEST, {"op": "add", "path": "/status/a~1b~0c", "value": 1}]),
        # Without a uid there is nothing to guard with.
        ("", {"phase": "Failed"}, {"phase"},
         [{"op": "add", "path": "/status/phase", "value": "Failed"}]),
    ],
)
def test_status_json_patch(uid: str, patch: dict, present: set | None, ops: list) -> None:
    assert status_json_patch(uid, patch, present) == ops


@pytest.mark.parametrize(
    ("previous", "desired", "patch"),
    [
        (None, {"phase": "Running", "message": None}, {"phase": "Running"}),
        ({"phase": "Running"}, {"phase": "Running"}, {}),
        ({"phase": "Running", "message": "x"}, {"phase": "Running", "message": None},
         {"message": None}),
        ({"tasks": [{"name": "a"}]}, {"tasks": [{"name": "a"}, {"name": "b"}]},
         {"tasks": [{"name": "a"}, {"name": "b"}]}),
    ],
)
def test_status_patch_is_a_minimal_merge_patch(previous, desired, patch) -> None:
    assert status_patch(previous, desired) == patch


@pytest.mark.parametrize(("phase", "missing", "reason"), [
    ("Running", ["gone"], "PoolNotFound"),
    ("Pending", ["a", "b"], "PoolNotFound"),
    ("Running", [], "Running"),
    ("Succeeded", ["gone"], "Succeeded"),  # a finished run needs no pool
    ("Cancelled", ["gone"], "Cancelled"),
])
def test_missing_pools_are_reported_on_open_executions(phase: str, missing: list[str],
                                                       reason: str) -> None:
    status = execution_status(generation=1, state=execution_state(2, phase), previous=None,
                              now=NOW, missing_pools=missing)
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert ready["reason"] == reason
    assert status["phase"] == phase  # the engine's phase, whatever the pools
    if reason == "PoolNotFound":
        named = ", ".join(repr(p) for p in missing)
        assert f"no WorkerPool named {named}" in status["message"]
        assert ready["message"] == status["message"]
        assert {c["type"] for c in status["conditions"]} == {"Ready", "Reconciling"}
    else:
        assert "WorkerPool" not in status["message"]


def test_a_workflow_waiting_for_its_store_is_not_ready_and_shows_no_old_hash() -> None:
    from datetime import UTC, datetime

    from conveyor_operator.status import workflow_status

    previous = {"contentHash": "sha256:old", "taskCount": 3, "conditions": []}
    status = workflow_status(generation=2, workflow=None, problem=None, previous=previous,
                             now=datetime(2026, 1, 1, tzinfo=UTC),
                             store_problem="ConnectionError: refused")
    ready = {c["type"]: c for c in status["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "StoreUnavailable")
    assert ready["message"] == "waiting for the store: ConnectionError: refused"
    assert status["contentHash"] is None and status["observedGeneration"] == 2
    assert "Stalled" not in {c["type"] for c in status["conditions"]}


WAITING = "waiting for 2 earlier run(s) of key 'ns/w[acme]' (1 running, 1 queued ahead; limit 1)"


@pytest.mark.parametrize(("phase", "queued", "reason", "message", "conditions"), [
    # queued in its concurrency group: Pending, the reason says why, the message how long
    ("Pending", True, "ConcurrencyLimit", WAITING,
     {"Ready": ("False", "ConcurrencyLimit"), "Reconciling": ("True", "ConcurrencyLimit")}),
    # a retried run queued again keeps its phase and says why it waits
    ("Running", True, "ConcurrencyLimit", WAITING,
     {"Ready": ("False", "ConcurrencyLimit"), "Reconciling": ("True", "ConcurrencyLimit")}),
    # refused by Forbid: Failed and Stalled with the group's reason, not TaskFailed
    ("Failed", False, "ConcurrencyForbidden", "ConcurrencyForbidden: concurrency group ...",
     {"Ready": ("False", "ConcurrencyForbidden"), "Stalled": ("True", "ConcurrencyForbidden")}),
    # cancelled by a newer run (Replace)
    ("Cancelled", False, "ConcurrencyReplaced", "ConcurrencyReplaced: replaced by ...",
     {"Ready": ("False", "ConcurrencyReplaced"), "Stalled": ("True", "ConcurrencyReplaced")}),
    # its deadline passed (issue 12): Failed with the engine's reason, as a Job's
    ("Failed", False, "DeadlineExceeded", "deadline exceeded: activeDeadlineSeconds (2s) ...",
     {"Ready": ("False", "DeadlineExceeded"), "Stalled": ("True", "DeadlineExceeded")}),
    ("Failed", False, "HandlerFailed", "all 2 task(s) succeeded; 1 of 1 handler task(s) failed",
     {"Ready": ("False", "HandlerFailed"), "Stalled": ("True", "HandlerFailed")}),
    # its outputs could not be evaluated (issue 12): the engine's reason, not TaskFailed
    ("Failed", False, "OutputsFailed", "outputs.raw: cannot evaluate ...",
     {"Ready": ("False", "OutputsFailed"), "Stalled": ("True", "OutputsFailed")}),
    # admitted: the usual conditions
    ("Pending", False, None, None,
     {"Ready": ("False", "Pending"), "Reconciling": ("True", "Pending")}),
])
def test_concurrency_reasons_on_execution_status(phase: str, queued: bool, reason: str | None,
                                                 message: str | None, conditions: dict) -> None:
    state = replace(execution_state(2, phase), queued=queued, reason=reason, message=message)
    status = execution_status(generation=1, state=state, previous=None, now=NOW)
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]} == conditions
    if message:
        assert status["message"].startswith(message)


@pytest.mark.parametrize(("reason", "message", "expected"), [
    # a task failed for the run: its error is appended
    (None, "1 of 2 task(s) failed", "1 of 2 task(s) failed; task 't0': boom"),
    # outputs failed: t0 failed under continueOn and is not the cause
    ("OutputsFailed", "outputs.raw: cannot evaluate", "outputs.raw: cannot evaluate"),
    ("DeadlineExceeded", "deadline exceeded", "deadline exceeded"),
])
def test_failed_message_names_only_the_cause(reason: str | None, message: str,
                                             expected: str) -> None:
    state = execution_state(2, "Failed")
    state = replace(state, reason=reason, message=message,
                    tasks=(replace(state.tasks[0], error="boom"), *state.tasks[1:]))
    status = execution_status(generation=1, state=state, previous=None, now=NOW)
    assert status["message"] == expected


@pytest.mark.parametrize(("before", "after", "reason", "events"), [
    # refused by its group: one Warning, never a Started
    (None, "Failed", "ConcurrencyForbidden", [("Warning", "ConcurrencyForbidden")]),
    ("Pending", "Failed", "ConcurrencyForbidden", [("Warning", "ConcurrencyForbidden")]),
    # replaced by a newer run, after it ran
    ("Running", "Cancelled", "ConcurrencyReplaced", [("Normal", "ConcurrencyReplaced")]),
    # a reason that does not belong to the phase changes nothing
    ("Running", "Failed", "ConcurrencyReplaced", [("Warning", "Failed")]),
    ("Running", "Failed", "DeadlineExceeded", [("Warning", "DeadlineExceeded")]),
    ("Pending", "Running", None, [("Normal", "Started")]),
])
def test_phase_events_with_the_engines_reason(before: str | None, after: str,
                                              reason: str | None, events: list) -> None:
    assert [(e.type, e.reason) for e in phase_events(before, after, "m", reason)] == events


@pytest.mark.parametrize(("engine", "unsubmitted", "seen", "samples"), [
    ({}, [], [], {}),
    ({("ConcurrencyLimit", "default"): 3, ("Suspended", "heavy"): 1},
     ["WorkflowNotFound", "WorkflowNotFound", "PoolNotReady"], [],
     {("ConcurrencyLimit", "default"): 3, ("Suspended", "heavy"): 1,
      ("WorkflowNotFound", ""): 2, ("PoolNotReady", ""): 1}),
    # a label set published before and gone now is set to 0, not left at its old value
    ({}, [], [("ConcurrencyLimit", "default")], {("ConcurrencyLimit", "default"): 0}),
])
def test_waiting_samples(engine: dict, unsubmitted: list, seen: list, samples: dict) -> None:
    assert waiting_samples(engine, unsubmitted, seen) == samples


def _waiting(reason: str, message: str, *, running: bool = False):
    state = execution_state(3, "Running")
    tasks = list(state.tasks)
    tasks[1] = replace(tasks[1], phase="Waiting", reason=reason, message=message,
                       finished_at=None)
    if running:
        tasks[2] = replace(tasks[2], phase="Running", finished_at=None)
    return replace(state, tasks=tuple(tasks))


@pytest.mark.parametrize(("state", "reason", "says"), [
    (_waiting("LockHeld", "waiting for lock db-1 (limit 1) held by e/t"), "LockHeld",
     "task 't1': waiting for lock db-1 (limit 1) held by e/t"),
    (_waiting("RateLimited", "waiting for rate limit api (next token in 0.2s)"),
     "RateLimited", "task 't1': waiting for rate limit api"),
    # a task still runs: the run is Running, the wait is only part of its story
    (_waiting("LockHeld", "waiting for lock db-1", running=True), "Running", None),
    # a retry's backoff is no shared wait
    (_waiting("RetryBackoff", "attempt 1 failed, retry 1 of 2 in 1s"), "Running", None),
])
def test_an_execution_says_which_lock_or_rate_limit_it_waits_for(
        state, reason: str, says: str | None) -> None:
    status = execution_status(generation=1, state=state, previous=None, now=NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == reason
    if says:
        assert says in status["message"] and says in ready["message"]


@pytest.mark.parametrize(("phase", "missing", "idle", "reason"), [
    ("Running", [], ["busy"], "NoWorkers"),
    ("Running", ["gone"], ["busy"], "PoolNotFound"),  # a missing pool says more
    ("Succeeded", [], ["busy"], "Succeeded"),  # a finished run waits for nothing
    ("Running", [], [], "Running"),
])
def test_a_run_whose_pool_has_no_ready_worker_says_so(phase: str, missing: list[str],
                                                      idle: list[str], reason: str) -> None:
    status = execution_status(generation=1, state=execution_state(2, phase), previous=None,
                              now=NOW, missing_pools=missing, idle_pools=idle)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == reason
    if reason == "NoWorkers":
        assert "no worker of WorkerPool 'busy' is ready" in status["message"]


def test_a_lock_wait_names_the_holding_execution_as_the_user_knows_it() -> None:
    holder = "b389d78f-1ef2-42e4-98c4-a6a52a12e321"
    state = _waiting("LockHeld", f"waiting for lock db:main (limit 1) held by {holder}/migrate")
    named = execution_status(generation=1, state=state, previous=None, now=NOW,
                             names={holder: "default/migrate-1"}.get)
    assert "held by default/migrate-1/migrate" in named["message"]
    unknown = execution_status(generation=1, state=state, previous=None, now=NOW,
                               names=lambda _: None)
    assert f"held by {holder}/migrate" in unknown["message"]  # not followed here: the id
