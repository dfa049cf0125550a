"""Compile-time checks of sub-workflows and workflow outputs, and the pure decisions of
sub-workflows (issue 12 items 2 and 6), as tables."""

from __future__ import annotations

import pytest

from conveyor_engine.compiler import (
    ChildWorkflowsNotFound,
    WorkflowFacts,
    WorkflowInvalid,
    child_name,
    compile_workflow,
    facts_of,
    facts_of_raw,
)
from conveyor_engine.compiler.subworkflows import depth_problem
from conveyor_engine.model import WorkflowSpec
from conveyor_engine.tasktypes.base import ChildRun, Failed, Succeeded
from conveyor_engine.tasktypes.workflow import outcome_of


def run(name: str, workflow: str, inputs: dict | None = None, **extra: object) -> dict:
    return {"name": name, "type": "workflow",
            "params": {"workflow": workflow, "inputs": inputs or {}, **extra}}


SET = {"name": "a", "type": "set", "params": {"x": 1}}
CHILD = WorkflowFacts({"n": True, "label": False}, frozenset({"ns/leaf"}))
KNOWN = {"ns/child": CHILD, "ns/leaf": WorkflowFacts(),
         "ns/loop": WorkflowFacts({}, frozenset({"ns/parent"}))}


@pytest.mark.parametrize(("tasks", "outputs", "workflows", "expected"), [
    ([run("c", "parent")], [], None,
     [("c", "params.workflow", 'runs its own workflow "ns/parent": recursion is refused')]),
    ([run("c", "parent", namespace="other")], [], None, []),
    ([run("c", "nope")], [], None, []),  # no facts: checked at run time
    ([run("c", "loop")], [], KNOWN,
     [("c", "params.workflow", "recursion is refused: ns/parent -> ns/loop -> ns/parent")]),
    ([run("c", "child", {"n": 1, "bogus": 2})], [], KNOWN,
     [("c", "params.inputs.bogus", 'workflow "ns/child" declares no input "bogus" '
                                   "(declared inputs: label, n)")]),
    ([run("c", "child", {})], [], KNOWN,
     [("c", "params.inputs.n", 'required input of workflow "ns/child" is missing')]),
    ([run("c", "child", {"n": 1})], [], KNOWN, []),
    ([run("c", "${{ 'x' }}")], [], KNOWN, []),  # templated: run time
    ([{**SET, "continueOn": {"failed": True}}],
     [{"name": "raw", "value": "${{ tasks.a.outputs.x }}"}], None,
     [(None, "outputs[0].value",
       'reads tasks.a.outputs, but "a" has continueOn.failed and may have Failed (its '
       "outputs are then empty); guard it with has(tasks.a.outputs....) or tasks.a.phase == "
       '"Succeeded"')]),
    ([{**SET, "continueOn": {"failed": True}}],
     [{"name": "o", "value": "${{ has(tasks.a.outputs.x) ? tasks.a.outputs.x : 0 }}"},
      {"name": "p", "value": "${{ tasks.a.phase == 'Succeeded' ? tasks.a.outputs.x : 0 }}"}],
     None, []),
    ([SET, {**run("d", "x"), "dependsOn": ["a"]}],
     [{"name": "o", "value": "${{ tasks.a.outputs.x }}"}], None, []),
    ([SET], [{"name": "o", "value": "${{ tasks.b.outputs.x }}"}], None,
     [(None, "outputs[0].value", 'refers to task "b", which does not exist')]),
    ([SET], [{"name": "o", "value": "${{ inputs.q }}"}], None,
     [(None, "outputs[0].value", 'refers to input "q", which is not declared '
                                 "(declared inputs: none)")]),
    ([SET], [{"name": "o", "value": "${{ tasks.a.outputs.x }}"},
             {"name": "o", "value": 1}], None,
     [(None, "outputs[1].name", 'duplicate output name "o"')]),
    ([{**SET, "when": "true == true"}], [{"name": "o", "value": "${{ tasks.a.outputs.x }}"}],
     None, [(None, "outputs[0].value",
             'reads tasks.a.outputs, but "a" has a when and may be Skipped (its outputs are '
             "then empty); guard it with has(tasks.a.outputs....) or tasks.a.phase == "
             '"Succeeded"')]),
    ([{**SET, "when": "true == true"}],
     [{"name": "o", "value": "${{ tasks.a.phase == 'Succeeded' ? tasks.a.outputs.x : 0 }}"},
      {"name": "p", "value": "${{ has(tasks.a.outputs.x) ? tasks.a.outputs.x : 0 }}"}],
     None, []),
    ([SET], [{"name": "o", "value": "${{ task.name }}"}], None,
     [(None, "outputs[0].value", "may use only inputs, tasks and execution (outputs are "
                                 "stored, and no task is running)")]),
    # every problem at once, each naming task and field
    ([run("c", "parent"), run("d", "child", {"bogus": 1})],
     [{"name": "o", "value": "${{ tasks.zz.outputs }}"}], KNOWN,
     [(None, "outputs[0].value", 'refers to task "zz", which does not exist'),
      ("c", "params.workflow", 'runs its own workflow "ns/parent": recursion is refused'),
      ("d", "params.inputs.bogus", 'workflow "ns/child" declares no input "bogus" '
                                   "(declared inputs: label, n)"),
      ("d", "params.inputs.n", 'required input of workflow "ns/child" is missing')]),
])
def test_compile_problems(tasks, outputs, workflows, expected) -> None:
    spec = {"tasks": tasks, "outputs": outputs}
    if not expected:
        compile_workflow("ns/parent", spec, workflows=workflows)
        return
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("ns/parent", spec, workflows=workflows)
    got = [(p.task, p.field, p.message) for p in caught.value.problems]
    assert got == expected


@pytest.mark.parametrize(("parent", "workflow", "namespace", "expected"), [
    ("team/etl", "load", None, "team/load"),
    ("team/etl", "load", "shared", "shared/load"),
    ("etl", "load", None, "load"),
    ("etl", "load", "shared", "shared/load"),
])
def test_child_name(parent, workflow, namespace, expected) -> None:
    assert child_name(parent, workflow, namespace) == expected


@pytest.mark.parametrize(("chain", "depth", "limit", "expected"), [
    (["a", "b"], 1, 10, None),
    (["a", "b", "c"], 10, 10, None),
    (["a", "b", "c"], 2, 1, "params.workflow: sub-workflows nest deeper than the limit of 1 "
                            "(CONVEYOR_MAX_WORKFLOW_DEPTH): a -> b -> c"),
])
def test_depth_problem(chain, depth, limit, expected) -> None:
    assert depth_problem(chain, depth, limit) == expected


@pytest.mark.parametrize(("phase", "outputs", "message", "expected"), [
    ("Pending", None, None, None),
    ("Running", None, None, None),
    ("Succeeded", {"x": 1}, None, Succeeded({"x": 1})),
    ("Failed", None, "task boom failed",
     Failed("child execution e1 of workflow ns/c failed: task boom failed", kind="ChildFailed")),
    ("Cancelled", None, "stop",
     Failed("child execution e1 of workflow ns/c was cancelled: stop", retryable=False,
            kind="ChildCancelled")),
])
def test_outcome_of_child(phase, outputs, message, expected) -> None:
    assert outcome_of(ChildRun("e1", "ns/c", phase, message, outputs)) == expected


@pytest.mark.parametrize(("message", "cause", "text", "retryable"), [
    # The child's first failed task says why, not only how many failed.
    ("1 of 1 task(s) failed", "long: HTTP 500 Internal Server Error",
     "child execution e1 of workflow ns/c failed: 1 of 1 task(s) failed; "
     "task long: HTTP 500 Internal Server Error", True),
    # A depth-limit failure anywhere below is not retried (it would nest as deep again).
    ("1 of 1 task(s) failed", "run-c: params.workflow: sub-workflows nest deeper than the "
     "limit of 1 (CONVEYOR_MAX_WORKFLOW_DEPTH): a -> b -> c",
     "child execution e1 of workflow ns/c failed: 1 of 1 task(s) failed; task run-c: "
     "params.workflow: sub-workflows nest deeper than the limit of 1 "
     "(CONVEYOR_MAX_WORKFLOW_DEPTH): a -> b -> c", False),
    # A cause already quoted in the message is not repeated.
    ("1 of 1 task(s) failed; task 'x': boom", "x: boom",
     "child execution e1 of workflow ns/c failed: 1 of 1 task(s) failed; task 'x': boom; "
     "task x: boom", True),
])
def test_a_failed_child_carries_its_cause_up(message, cause, text, retryable) -> None:
    outcome = outcome_of(ChildRun("e1", "ns/c", "Failed", message, None, cause=cause))
    assert outcome == Failed(text, kind="ChildFailed", retryable=retryable)


def test_outputs_of_an_onfailure_task_need_a_guard() -> None:
    spec = {"tasks": [SET], "onFailure": [{**SET, "name": "h"}],
            "outputs": [{"name": "o", "value": "${{ tasks.h.outputs.x }}"}]}
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("ns/parent", spec)
    assert [p.message for p in caught.value.problems] == [
        'reads tasks.h.outputs, but "h" is an onFailure task, Skipped whenever the run '
        "succeeds (its outputs are then empty); guard it with has(tasks.h.outputs....) or "
        'tasks.h.phase == "Succeeded"']


def test_a_missing_child_waits_and_other_problems_come_first() -> None:
    with pytest.raises(ChildWorkflowsNotFound) as caught:
        compile_workflow("ns/parent", {"tasks": [run("c", "nope")]}, workflows=KNOWN)
    assert str(caught.value) == ('task "c": params.workflow: no workflow "ns/nope" is '
                                 'registered (yet); did you mean "ns/loop"?')
    with pytest.raises(WorkflowInvalid):  # invalid beats waiting
        compile_workflow("ns/parent", {"tasks": [run("c", "nope"), run("d", "loop")]},
                         workflows=KNOWN)
    assert facts_of_raw("ns/p", {"tasks": [run("c", "leaf")]}) == WorkflowFacts(
        {}, frozenset({"ns/leaf"}))
    assert facts_of_raw("ns/p", {"tasks": "no"}) is None


def test_facts_of_a_spec() -> None:
    spec = WorkflowSpec.model_validate({
        "inputs": [{"name": "n"}, {"name": "m", "default": 1}],
        "tasks": [run("c", "leaf"), run("d", "x", namespace="o"), SET]})
    assert facts_of("ns/p", spec) == WorkflowFacts({"n": True, "m": False},
                                                   frozenset({"ns/leaf", "o/x"}))


def test_outputs_change_the_hash_only_when_declared() -> None:
    plain = compile_workflow("w", {"tasks": [SET]})
    empty = compile_workflow("w", {"tasks": [SET], "outputs": []})
    declared = compile_workflow("w", {"tasks": [SET],
                                      "outputs": [{"name": "o", "value": 1}]})
    assert plain.content_hash == empty.content_hash != declared.content_hash
    assert declared.evaluate_outputs({"tasks": {}, "inputs": {}}) == {"o": 1}
