"""Compile-time checks of failure handling and deadlines (issue 12 items 3, 4 and 6): the
problems as a table, each naming task and field, and what a valid spec compiles to."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_engine.compiler import CompiledWorkflow, WorkflowInvalid, compile_workflow


def task(name: str, *deps: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": "set", "dependsOn": list(deps), **fields}


def value(expression: str) -> dict[str, Any]:
    return {"params": {"v": "${{ " + expression + " }}"}}


FLAKY = task("a", continueOn={"failed": True})


def test_handlers_and_continue_on_compile() -> None:
    """Handlers read any main task's phase and error, guarded outputs, the run's outcome,
    and their own list's upstream tasks; they are not roots and start with the gate."""
    wf = compile_workflow("ok", {
        "tasks": [FLAKY, task("b", "a", **value("[tasks.a.phase, tasks.a.error]"))],
        "onFailure": [task("notify", **value(
            "[tasks.a.error, execution.phase, execution.reason, execution.failedTasks]"))],
        "finally": [task("clean", **value(
            "has(tasks.b.outputs.v) ? tasks.b.outputs.v : 'none'")),
            task("after", "clean", **value("tasks.clean.outputs.v"))],
        "activeDeadlineSeconds": 30})
    assert wf.roots == ("a",)
    assert wf.handlers == ("notify", "clean", "after")
    assert {n: (t.stage, t.initial_deps) for n, t in wf.tasks.items()} == {
        "a": ("main", 0), "b": ("main", 1), "notify": ("onFailure", 1),
        "clean": ("finally", 1), "after": ("finally", 2)}
    assert wf.tasks["a"].continues_on_failure and not wf.tasks["b"].continues_on_failure
    assert wf.deadline_seconds == 30
    again = CompiledWorkflow.from_json("ok", wf.to_json())
    assert again.content_hash == wf.content_hash and again.handlers == wf.handlers


def test_specs_without_the_new_fields_hash_as_before() -> None:
    plain = compile_workflow("w", {"tasks": [task("a")]})
    explicit = compile_workflow("w", {"tasks": [task("a", continueOn=None)], "onFailure": [],
                                      "finally": [], "activeDeadlineSeconds": None})
    assert plain.content_hash == explicit.content_hash
    assert "onFailure" not in plain.to_json() and "continueOn" not in plain.to_json()


@pytest.mark.parametrize(("spec", "task_name", "field", "words"), [
    ({"tasks": [task("a")], "finally": [task("a")]},
     "a", "name", "duplicate task name (tasks[0] and finally[0])"),
    ({"tasks": [task("a", "h")], "onFailure": [task("h")]},
     "a", "dependsOn[0]", '"h" is an onFailure task; main tasks cannot depend on handler'),
    ({"tasks": [task("a")], "finally": [task("h", "a")]},
     "h", "dependsOn[0]", '"a" is a main task; finally tasks run after every main task'),
    ({"tasks": [task("a")], "onFailure": [task("x")], "finally": [task("h", "x")]},
     "h", "dependsOn[0]", "a finally task may depend only on tasks of its own list"),
    ({"tasks": [task("a")], "onFailure": [task("x")],
      "finally": [task("h", **value("tasks.x.phase"))]},
     "h", "params.v", 'refers to task "x" of onFailure; a finally task may read main tasks'),
    ({"tasks": [task("a", **value("tasks.h.phase"))], "finally": [task("h")]},
     "a", "params.v", 'refers to task "h", a finally task; main tasks cannot read handler'),
    ({"tasks": [task("a")], "onFailure": [task("h", **value("tasks.a.outputs.id"))]},
     "h", "params.v", "tasks.a.outputs may not exist (onFailure tasks run whether or not "),
    ({"tasks": [task("a")], "finally": [task("h", **value("tasks.a"))]},
     "h", "params.v", "tasks.a.outputs may not exist"),
    ({"tasks": [FLAKY, task("b", "a", **value("tasks.a.outputs.id"))]},
     "b", "params.v", "tasks.a.outputs may not exist ('a' has continueOn.failed"),
    ({"tasks": [FLAKY, task("b", "a", when="tasks.a.outputs.ok")]},
     "b", "when", "tasks.a.outputs may not exist"),
    ({"tasks": [task("a", **value("execution.phase"))]},
     "a", "params.v", "execution.phase: only onFailure and finally tasks may read it"),
    ({"tasks": [task("a", **value("tasks.a.error.size()"))]},
     "a", "params.v", "refers to task \"a\" itself"),
    ({"tasks": [task("a")], "finally": [task("h", **value("execution.failed"))]},
     "h", "params.v", "execution has no field 'failed'"),
])
def test_problems(spec: dict[str, Any], task_name: str, field: str, words: str) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("bad", spec)
    found = [(p.task, p.field, p.message) for p in caught.value.problems]
    assert any(t == task_name and f == field and words in m for t, f, m in found), found


def test_all_problems_reported_at_once() -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("bad", {
            "tasks": [FLAKY, task("b", "a", "h", **value("tasks.a.outputs.x"))],
            "onFailure": [task("h", "a", **value("tasks.b.outputs.y"))]})
    assert {(p.task, p.field) for p in caught.value.problems} == {
        ("b", "dependsOn[1]"), ("b", "params.v"), ("h", "dependsOn[0]"), ("h", "params.v")}


@pytest.mark.parametrize("seconds", [0, -1, 366 * 24 * 3600 + 1])
def test_deadline_bounds(seconds: int) -> None:
    with pytest.raises(WorkflowInvalid, match="activeDeadlineSeconds"):
        compile_workflow("bad", {"tasks": [task("a")], "activeDeadlineSeconds": seconds})
