"""The CRDs, the pydantic models and the examples agree with each other."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from conveyor_engine import tasktypes
from conveyor_engine.compiler import compile_workflow
from conveyor_engine.model import INPUT_NAME_PATTERN, NAME_PATTERN
from conveyor_engine.tasktypes.validation import TYPE_NAME_PATTERN
from conveyor_operator.resources import ExecutionResource, ScheduleResource, WorkflowResource
from conveyor_operator.schedules.cron import parse_schedule
from conveyor_operator.schedules.runs import render_inputs
from conveyor_operator.status import Waiting, execution_status, workflow_status
from tests.support.factories import execution_state
from tests.support.manifests import EXAMPLES, crds, load_all, schema_errors

EXAMPLE_DOCS = [(path.name, doc) for path in sorted(EXAMPLES.glob("*.yaml"))
                for doc in load_all(path)]
MODELS = {"Workflow": WorkflowResource, "Execution": ExecutionResource,
          "Schedule": ScheduleResource}
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_there_are_examples_of_both_kinds() -> None:
    kinds = [doc["kind"] for _, doc in EXAMPLE_DOCS]
    assert kinds.count("Workflow") >= 3 and kinds.count("Execution") >= 3


@pytest.mark.parametrize(("path", "doc"), EXAMPLE_DOCS,
                         ids=[f"{p}:{d['metadata']['name']}" for p, d in EXAMPLE_DOCS])
def test_example_is_valid_for_the_crd_and_the_model(path: str, doc: dict) -> None:
    assert schema_errors(doc["kind"], doc) == []
    resource = MODELS[doc["kind"]].model_validate(doc)
    if doc["kind"] == "Workflow":
        compile_workflow(resource.metadata.name, resource.spec)
        return
    workflows = {d["metadata"]["name"]: d for _, d in EXAMPLE_DOCS if d["kind"] == "Workflow"}
    target = workflows[resource.spec.workflow_ref.name]
    compiled = compile_workflow(target["metadata"]["name"], target["spec"])
    inputs = resource.spec.inputs
    if doc["kind"] == "Schedule":
        cron = parse_schedule(resource.spec.schedule, resource.spec.time_zone)
        inputs = render_inputs(inputs, cron.next_after(NOW), ZoneInfo(cron.zone_name))
    compiled.resolve_inputs(inputs)


def test_crd_task_types_follow_the_registry_name_rule() -> None:
    """Any installed type may be named (no enum of the built-ins); the pattern is the
    registry's, and every registered type matches it."""
    task = crds()["Workflow"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]["spec"]["properties"]["tasks"]["items"]
    assert "enum" not in task["properties"]["type"]
    assert task["properties"]["type"]["pattern"] == TYPE_NAME_PATTERN
    assert all(re.match(TYPE_NAME_PATTERN, name) for name in tasktypes.known())
    assert task["properties"]["name"]["pattern"] == NAME_PATTERN
    spec = crds()["Workflow"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"][
        "properties"]["spec"]["properties"]
    assert spec["inputs"]["items"]["properties"]["name"]["pattern"] == INPUT_NAME_PATTERN
    assert spec["pool"]["pattern"] == NAME_PATTERN


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"spec": {}}, "tasks"),
        ({"spec": {"tasks": [{"name": "a", "type": "FTP!"}]}}, "type"),
        ({"spec": {"tasks": [{"name": "A!", "type": "set"}]}}, "name"),
        ({"spec": {"tasks": [{"name": "a", "type": "set", "timeout": "soon"}]}}, "timeout"),
        ({"spec": {"tasks": [{"name": "a", "type": "set", "retry": {"limit": -1}}]}}, "limit"),
    ],
)
def test_workflow_schema_rejects(doc: dict, field: str) -> None:
    errors = schema_errors("Workflow", {"apiVersion": "conveyor.dev/v1alpha1",
                                        "kind": "Workflow", "metadata": {"name": "w"}, **doc})
    assert errors and any(field in e for e in errors), errors


@pytest.mark.parametrize(
    "status",
    [
        execution_status(generation=1, state=execution_state(3), previous=None, now=NOW),
        execution_status(generation=1, state=execution_state(80, "Failed"), previous=None, now=NOW),
        execution_status(generation=2, state=None, previous=None, now=NOW,
                         waiting=Waiting("WorkflowNotFound", "workflow 'x' not found")),
        execution_status(generation=1, state=None, previous=None, now=NOW,
                         waiting=Waiting("InvalidInputs", "inputs.x: missing", final=True)),
    ],
    ids=["running", "failed-many-tasks", "waiting", "invalid-inputs"],
)
def test_execution_status_fits_the_crd(status: dict) -> None:
    clean = {k: v for k, v in status.items() if v is not None}
    assert schema_errors("Execution", clean, part="status") == []


@pytest.mark.parametrize("compiled", [True, False])
def test_workflow_status_fits_the_crd(compiled: bool) -> None:
    workflow = compile_workflow("w", {"tasks": [{"name": "a", "type": "set"}]}) if compiled \
        else None
    status = workflow_status(generation=3, workflow=workflow, problem=None if compiled else "x",
                             previous=None, now=NOW)
    clean = {k: v for k, v in status.items() if v is not None}
    assert schema_errors("Workflow", clean, part="status") == []
