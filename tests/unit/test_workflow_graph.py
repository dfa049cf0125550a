"""The operator's facts of the Workflows it compiled, and which callers compile again when
one changes (issue 12), as a table of steps."""

from __future__ import annotations

from datetime import UTC, datetime

from conveyor_operator.status import workflow_status
from conveyor_operator.workflowgraph import WorkflowGraph


def calls(*children: str, inputs: tuple[str, ...] = ()) -> dict:
    return {"inputs": [{"name": i} for i in inputs],
            "tasks": [{"name": f"run-{c}", "type": "workflow", "params": {"workflow": c}}
                      for c in children] or [{"name": "x", "type": "set", "params": {}}]}


def test_callers_compile_again_when_facts_change() -> None:
    graph = WorkflowGraph()
    steps = [
        (("ns", "a"), calls("b"), []),              # a calls b, not applied yet
        (("ns", "b"), calls("a"), [("ns", "a")]),   # b appears: a compiles again
        (("ns", "b"), calls("a"), []),              # same facts: nothing to do
        (("ns", "b"), calls("a", inputs=("n",)), [("ns", "a")]),  # inputs changed
        (("other", "b"), calls(), []),              # another namespace's b: no caller
        (("ns", "b"), None, [("ns", "a")]),         # deleted: a waits again
        (("ns", "c"), {"tasks": "no"}, []),         # not a spec's shape: unknown
    ]
    for key, spec, expected in steps:
        assert graph.set(key, spec) == expected, (key, spec)
    assert sorted(graph.facts) == ["ns/a", "other/b"]


def test_a_workflow_waiting_for_a_child_says_so() -> None:
    status = workflow_status(generation=1, workflow=None, problem=None, previous=None,
                             now=datetime.now(UTC), waiting='task "c": no workflow ...',
                             waiting_reason="ChildWorkflowNotFound")
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ChildWorkflowNotFound")
