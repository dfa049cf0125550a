"""Reading resources through their models, as tables: statuses read back never fail, the
namespace a pool asks for, where its Deployment was last put, an Execution's spec."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from conveyor_operator.resources import (
    ExecutionSpec,
    ExecutionStatus,
    WorkerPoolStatus,
    requested_namespace,
)


@pytest.mark.parametrize(("status", "execution_id", "phase", "tasks"), [
    pytest.param(None, None, None, 0, id="no-status"),
    pytest.param({}, None, None, 0, id="empty"),
    pytest.param({"executionId": "e1", "phase": "Running",
                  "tasks": [{"name": "a", "phase": "Succeeded", "attempts": 1}]},
                 "e1", "Running", 1, id="as-written"),
    pytest.param({"executionId": "e1", "phase": "Sleeping"}, "e1", None, 0,
                 id="unknown-phase-read-as-absent"),
    pytest.param({"executionId": "e1", "tasks": [{"name": "a"}]}, "e1", None, 0,
                 id="bad-task-list-read-as-absent"),
    pytest.param({"phase": "Failed", "somethingOld": 3}, None, "Failed", 0,
                 id="unknown-keys-ignored"),
])
def test_execution_status_read_never_fails(status: dict[str, Any] | None,
                                           execution_id: str | None, phase: str | None,
                                           tasks: int) -> None:
    seen = ExecutionStatus.read(status)
    assert (seen.execution_id, seen.phase, len(seen.tasks)) == (execution_id, phase, tasks)


@pytest.mark.parametrize(("deployment", "namespace"), [
    (None, None), ("", None), ("work/conveyor-worker-p", "work"), ("no-slash", None),
    ("/conveyor-worker-p", None),
])
def test_deployed_namespace(deployment: str | None, namespace: str | None) -> None:
    status = {} if deployment is None else {"deployment": deployment}
    assert WorkerPoolStatus.read(status).deployed_namespace() == namespace


@pytest.mark.parametrize(("spec", "namespace"), [
    (None, "default"), ({}, "default"), ({"namespace": ""}, "default"),
    ({"namespace": "work"}, "work"),
    ({"namespace": "work", "minReplicas": "not a number"}, "work"),  # invalid spec: still read
])
def test_requested_namespace(spec: dict[str, Any] | None, namespace: str) -> None:
    assert requested_namespace(spec, "default") == namespace


@pytest.mark.parametrize(("spec", "valid"), [
    ({"workflowRef": {"name": "w"}}, True),
    ({"workflowRef": {"name": "w"}, "inputs": {"n": 1}}, True),
    ({"workflowRef": {"name": ""}}, False),
    ({"inputs": {}}, False),
    ({"workflowRef": {"name": "w"}, "extra": 1}, False),
])
def test_execution_spec(spec: dict[str, Any], valid: bool) -> None:
    if valid:
        parsed = ExecutionSpec.model_validate(spec)
        assert parsed.workflow_ref.name == "w" and parsed.inputs == spec.get("inputs", {})
    else:
        with pytest.raises(ValidationError):
            ExecutionSpec.model_validate(spec)
