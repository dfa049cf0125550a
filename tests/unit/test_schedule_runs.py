"""The Executions a Schedule creates (pure): names, labels, inputs, history limits, and the
Schedule's status built from them (it fits the CRD)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor_operator.reasons import ConditionReason, EventReason
from conveyor_operator.resources import ScheduleResource, ScheduleSpec
from conveyor_operator.schedules.runs import (
    SCHEDULE_LABEL,
    SCHEDULED_TIME_ANNOTATION,
    InputsError,
    Owner,
    Run,
    owned_runs,
    render_inputs,
    run_manifest,
    run_name,
    runs_to_delete,
    schedule_label,
)
from conveyor_operator.status import ScheduleFacts, schedule_status, tick_event
from tests.support.manifests import schema_errors

T = datetime(2025, 3, 9, 7, 0, tzinfo=UTC)  # 03:00 EDT
NOW = datetime(2025, 3, 9, 7, 0, 5, tzinfo=UTC)
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@pytest.mark.parametrize(("schedule", "expected"), [
    ("nightly", "nightly-29025060"),
    ("a" * 52, "a" * 52 + "-29025060"),
])
def test_run_names_are_the_schedule_and_the_unix_minutes(schedule: str, expected: str) -> None:
    assert run_name(schedule, T) == expected
    assert run_name(schedule, T.replace(second=59)) == expected  # minutes, as a CronJob's


@pytest.mark.parametrize("schedule", ["b" * 53, "c" * 253, "x" * 51 + "-" + "y" * 100,
                                      "d" * 50 + "." + "e" * 40])
def test_long_schedule_names_are_cut_with_a_hash(schedule: str) -> None:
    name, label = run_name(schedule, T), schedule_label(schedule)
    assert len(name) <= 63 and DNS_LABEL.match(name.replace(".", "-")), name
    assert len(label) <= 63 and LABEL_VALUE.match(label), label
    assert run_name(schedule + "z", T) != name and schedule_label(schedule + "z") != label


def test_short_labels_are_the_name() -> None:
    assert schedule_label("nightly") == "nightly"


@pytest.mark.parametrize(("zone", "expected"), [
    ("America/New_York", "2025-03-09T03:00:00-04:00"),
    ("UTC", "2025-03-09T07:00:00Z"),
    ("Asia/Kolkata", "2025-03-09T12:30:00+05:30"),
])
def test_inputs_get_the_scheduled_time_in_the_zone(zone: str, expected: str) -> None:
    inputs = {"day": "${{ execution.scheduledTime }}", "n": 3,
              "nested": {"list": ["at ${{execution.scheduledTime}}!", True]}}
    assert render_inputs(inputs, T, ZoneInfo(zone)) == {
        "day": expected, "n": 3, "nested": {"list": [f"at {expected}!", True]}}


def test_other_expressions_in_inputs_are_refused_naming_the_input() -> None:
    with pytest.raises(InputsError, match=r"spec\.inputs\.a\.b\[1\]: only .* not "
                                          r"\$\{\{ inputs\.x \}\}"):
        render_inputs({"a": {"b": ["ok", "${{ inputs.x }}"]}}, T, ZoneInfo("UTC"))


def spec(**extra: object) -> ScheduleSpec:
    return ScheduleSpec.model_validate({"workflowRef": {"name": "report"},
                                        "schedule": "0 3 * * *", **extra})


def test_the_manifest_names_its_schedule_time_and_owner() -> None:
    made = run_manifest(Owner("nightly", "team-a", "uid-9"),
                        spec(ttlSecondsAfterFinished=60, priority=50), T, {"day": "x"})
    assert made["metadata"] == {
        "name": "nightly-29025060", "namespace": "team-a",
        "labels": {SCHEDULE_LABEL: "nightly"},
        "annotations": {SCHEDULED_TIME_ANNOTATION: "2025-03-09T07:00:00Z"},
        "ownerReferences": [{"apiVersion": "conveyor.dev/v1alpha1", "kind": "Schedule",
                             "name": "nightly", "uid": "uid-9", "controller": True}]}
    assert made["spec"] == {"workflowRef": {"name": "report"}, "inputs": {"day": "x"},
                            "ttlSecondsAfterFinished": 60, "priority": 50}
    assert schema_errors("Execution", made) == []
    plain = run_manifest(Owner("n", "ns", "u"), spec(), T, {})["spec"]
    assert "ttlSecondsAfterFinished" not in plain and "priority" not in plain


def obj(name: str, owner: str, stamp: str | None, phase: str | None,
        finished: str | None = None) -> dict:
    meta: dict = {"name": name, "uid": f"u-{name}",
                  "ownerReferences": [{"uid": owner, "controller": True}]}
    if stamp:
        meta["annotations"] = {SCHEDULED_TIME_ANNOTATION: stamp}
    status = {k: v for k, v in {"phase": phase, "finishedAt": finished}.items() if v}
    return {"metadata": meta, "status": status}


def test_owned_runs_are_the_owners_sorted_by_scheduled_time() -> None:
    runs = owned_runs([obj("b", "me", "2025-03-09T07:01:00Z", "Running"),
                       obj("a", "me", "2025-03-09T07:00:00Z", "Succeeded"),
                       obj("c", "someone-else", "2025-03-09T06:00:00Z", None),
                       obj("d", "me", None, None)], "me")
    assert [(r.name, r.open) for r in runs] == [("d", True), ("a", False), ("b", True)]


def run(name: str, minute: int, phase: str | None) -> Run:
    return Run(name, f"u-{name}", T.replace(minute=minute), phase,
               f"2025-03-09T07:{minute:02d}:30Z" if phase in ("Succeeded", "Failed") else None)


def test_history_limits_delete_the_oldest_finished_beyond_them() -> None:
    runs = [run("s1", 1, "Succeeded"), run("f1", 2, "Failed"), run("s2", 3, "Succeeded"),
            run("c1", 4, "Cancelled"), run("s3", 5, "Succeeded"), run("o1", 6, "Running"),
            run("o2", 7, None)]
    doomed = runs_to_delete(runs, successful_limit=2, failed_limit=1)
    assert [r.name for r in doomed] == ["s1", "f1"]
    assert [r.name for r in runs_to_delete(runs, successful_limit=0, failed_limit=0)] == [
        "s1", "f1", "s2", "c1", "s3"]


def test_status_lists_open_runs_and_the_last_outcome_and_fits_the_crd() -> None:
    facts = ScheduleFacts(2, False, last_schedule=T, last_tick=T, next_tick=T.replace(hour=8),
                          runs=[run("s1", 1, "Succeeded"), run("f1", 2, "Failed"),
                                run("o1", 3, "Running")], describe="'0 3 * * *' in UTC")
    status = schedule_status(facts, previous=None, now=NOW)
    assert status["active"] == [{"name": "o1", "scheduledTime": "2025-03-09T07:03:00Z"}]
    assert status["lastOutcome"] == {"name": "f1", "phase": "Failed",
                                     "scheduledTime": "2025-03-09T07:02:00Z",
                                     "finishedAt": "2025-03-09T07:02:30Z"}
    assert status["lastSuccessfulTime"] == "2025-03-09T07:01:30Z"
    assert status["nextScheduleTime"] == "2025-03-09T08:00:00Z"
    ready = status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("True", ConditionReason.SCHEDULED)
    clean = {k: v for k, v in status.items() if v is not None}
    assert schema_errors("Schedule", clean, part="status") == []
    # Runs deleted later (history limits) do not erase what they told.
    later = schedule_status(ScheduleFacts(2, False, runs=[]), previous=clean, now=NOW)
    assert later["lastOutcome"] == status["lastOutcome"]
    assert later["lastSuccessfulTime"] == status["lastSuccessfulTime"]
    assert later["active"] is None


@pytest.mark.parametrize(("problem", "suspended", "ready", "second"), [
    ((ConditionReason.INVALID_SCHEDULE, "spec.schedule: Bad minute"), False, "False",
     ("Stalled", "InvalidSchedule")),
    ((ConditionReason.INVALID_TIME_ZONE, "spec.timeZone: unknown"), False, "False",
     ("Stalled", "InvalidTimeZone")),
    ((ConditionReason.WORKFLOW_NOT_FOUND, "workflow 'x' not found"), False, "False",
     ("Reconciling", "WorkflowNotFound")),
    (None, True, "True", None),
])
def test_conditions(problem: tuple[str, str] | None, suspended: bool, ready: str,
                    second: tuple[str, str] | None) -> None:
    status = schedule_status(ScheduleFacts(1, suspended, problem), previous=None, now=NOW)
    conditions = status["conditions"]
    assert conditions[0]["status"] == ready
    if second:
        assert (conditions[1]["type"], conditions[1]["reason"]) == second
    else:
        assert conditions[0]["reason"] == ConditionReason.SUSPENDED and len(conditions) == 1


def test_tick_events_warn_only_about_trouble() -> None:
    assert tick_event(EventReason.RUN_CREATED, "m").type == "Normal"
    assert tick_event(EventReason.MISSED_RUN_SKIPPED, "m").type == "Normal"
    assert tick_event(EventReason.MISSED_DEADLINE, "m").type == "Warning"
    assert tick_event(EventReason.WORKFLOW_NOT_FOUND, "m").type == "Warning"


@pytest.mark.parametrize(("extra", "where"), [
    ({"concurrencyPolicy": "Sometimes"}, "concurrencyPolicy"),
    ({"missedRunPolicy": "Later"}, "missedRunPolicy"),
    ({"jitter": "soon"}, "jitter"),
    ({"maxCatchUp": 0}, "maxCatchUp"),
    ({"startingDeadlineSeconds": -1}, "startingDeadlineSeconds"),
])
def test_the_crd_refuses_bad_fields(extra: dict, where: str) -> None:
    doc = {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Schedule",
           "metadata": {"name": "s"},
           "spec": {"workflowRef": {"name": "w"}, "schedule": "* * * * *", **extra}}
    errors = schema_errors("Schedule", doc)
    assert errors and any(where in e for e in errors), errors
    with pytest.raises(ValueError, match=where):
        ScheduleResource.model_validate(doc)


def test_the_model_refuses_a_jitter_over_an_hour() -> None:
    with pytest.raises(ValueError, match="jitter: '2h' is longer than 1h"):
        spec(jitter="2h")
    assert spec(jitter="1m30s").jitter_delta.total_seconds() == 90
