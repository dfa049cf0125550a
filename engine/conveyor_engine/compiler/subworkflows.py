"""Sub-workflows at compile time: the name a ``workflow`` task's child resolves to, and the
checks made with what is known of other workflows (pure).

A ``workflow`` task (params ``{workflow, namespace?, inputs}``) runs the version of that
Workflow registered last. Names are the engine's: the operator registers a Workflow as
``<namespace>/<name>``, so a child is looked up in its parent's namespace unless
``namespace`` names another (:func:`child_name`). Facts about other workflows
(:class:`WorkflowFacts`, by engine name) are passed in like pool facts; without them (or
for a name they lack, or a templated name) the checks are made at run time instead: a
child of a workflow that does not exist fails the task then.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..expressions import OPEN
from ..model import TaskSpec, WorkflowSpec
from .problems import Problem, did_you_mean

#: The built-in task type that runs another workflow.
WORKFLOW_TYPE = "workflow"


@dataclass(frozen=True, slots=True)
class WorkflowFacts:
    """What is known of one registered workflow: its inputs (name -> required) and the
    engine names of the workflows its ``workflow`` tasks name literally."""

    inputs: Mapping[str, bool] = field(default_factory=dict)
    children: frozenset[str] = frozenset()


def child_name(parent: str, workflow: str, namespace: str | None = None) -> str:
    """The engine name of a child: ``namespace/workflow`` with ``namespace`` given, else in
    the parent's namespace (the part of ``parent`` before ``/``), else ``workflow`` as is
    (a parent registered without a namespace, by a program using the engine alone)."""
    if namespace:
        return f"{namespace}/{workflow}"
    home, slash, _ = parent.rpartition("/")
    return f"{home}/{workflow}" if slash else workflow


def literal_children(name: str, spec: WorkflowSpec) -> dict[str, str]:
    """``{task name: child engine name}`` of the ``workflow`` tasks whose ``workflow`` and
    ``namespace`` are literal strings (no template)."""
    found = {}
    for task in spec.tasks:
        target = _literal_target(name, task)
        if target is not None:
            found[task.name] = target
    return found


def facts_of(name: str, spec: WorkflowSpec) -> WorkflowFacts:
    """The :class:`WorkflowFacts` of a workflow spec registered as ``name``."""
    return WorkflowFacts({i.name: i.is_required for i in spec.inputs},
                         frozenset(literal_children(name, spec).values()))


def facts_of_raw(name: str, spec: Mapping[str, Any]) -> WorkflowFacts | None:
    """The :class:`WorkflowFacts` of a raw (wire form) spec registered as ``name``, or
    None when it is not even a valid spec's shape (the compiler reports that)."""
    try:
        return facts_of(name, WorkflowSpec.model_validate(spec))
    except ValidationError:
        return None


class ChildWorkflowsNotFound(Exception):
    """The workflow is valid as far as can be told, but ``workflow`` tasks of it name
    workflows that are not registered (yet): it waits for them rather than being invalid
    (GitOps applies in any order). ``problems``: one per task (field ``params.workflow``)."""

    def __init__(self, name: str, problems: list[Problem]):
        self.name = name
        self.problems = problems
        super().__init__("; ".join(f'task "{p.task}": {p.field}: {p.message}'
                                   for p in problems))


def missing_children(name: str, spec: WorkflowSpec,
                     workflows: Mapping[str, WorkflowFacts] | None) -> list[Problem]:
    """With ``workflows`` (what is registered, by engine name), a problem per ``workflow``
    task whose literal child is not among them; none without facts."""
    if workflows is None:
        return []
    problems = []
    for task in spec.tasks:
        target = _literal_target(name, task)
        if target is not None and target != name and target not in workflows:
            problems.append(Problem(task.name, "params.workflow", (
                f'no workflow "{target}" is registered (yet)'
                + did_you_mean(target, workflows))))
    return problems


def _literal_target(parent: str, task: TaskSpec) -> str | None:
    if task.type != WORKFLOW_TYPE:
        return None
    workflow, namespace = task.params.get("workflow"), task.params.get("namespace")
    if not isinstance(workflow, str) or OPEN in workflow:
        return None
    if namespace is not None and (not isinstance(namespace, str) or OPEN in namespace):
        return None
    return child_name(parent, workflow, namespace)


def subworkflow_problems(name: str, spec: WorkflowSpec,
                         workflows: Mapping[str, WorkflowFacts] | None) -> list[Problem]:
    """Problems of the ``workflow`` tasks of ``spec`` (registered as ``name``): a task
    naming its own workflow (always refused); with ``workflows`` (what is registered, by
    engine name), a cycle through registered workflows, and
    ``params.inputs`` against the child's declared inputs (unknown, missing required)."""
    problems = []
    for task in spec.tasks:
        target = _literal_target(name, task)
        if target is None:
            continue
        if target == name:
            problems.append(Problem(task.name, "params.workflow",
                                    f'runs its own workflow "{name}": recursion is refused'))
            continue
        if workflows is None:
            continue
        facts = workflows.get(target)
        if facts is None:
            continue  # missing_children: the workflow waits for it
        chain = _cycle(name, target, workflows)
        if chain:
            problems.append(Problem(task.name, "params.workflow",
                                    "recursion is refused: " + " -> ".join(chain)))
        problems += _input_problems(task, target, facts)
    return problems


def _cycle(name: str, start: str, workflows: Mapping[str, WorkflowFacts]) -> list[str]:
    """``[name, start, ..., name]`` when ``name`` is reachable from ``start`` through the
    registered workflows' literal children (breadth-first, shortest), else ``[]``."""
    previous: dict[str, str] = {start: name}
    frontier = [start]
    while frontier:
        following = []
        for current in frontier:
            for child in sorted(workflows.get(current, WorkflowFacts()).children):
                if child == name:
                    path = [current]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return [name, *reversed(path), name]
                if child not in previous:
                    previous[child] = current
                    following.append(child)
        frontier = following
    return []


def _input_problems(task: TaskSpec, target: str, facts: WorkflowFacts) -> list[Problem]:
    given = task.params.get("inputs")
    if not isinstance(given, Mapping):
        return []  # templated (checked at run time) or not a map (the params model says)
    problems = []
    for key in given:
        if key not in facts.inputs:
            declared = ", ".join(sorted(facts.inputs)) or "none"
            problems.append(Problem(task.name, f"params.inputs.{key}", (
                f'workflow "{target}" declares no input "{key}" (declared inputs: '
                f"{declared}){did_you_mean(str(key), facts.inputs)}")))
    for key, required in sorted(facts.inputs.items()):
        if required and key not in given:
            problems.append(Problem(task.name, f"params.inputs.{key}",
                                    f'required input of workflow "{target}" is missing'))
    return problems


#: The words of a depth-limit failure; a parent whose child failed with them does not retry
#: (the same chain nests as deep again), however deep it sits (:mod:`..tasktypes.workflow`).
DEPTH_EXCEEDED = "sub-workflows nest deeper than the limit"


def depth_problem(chain: list[str], depth: int, limit: int) -> str | None:
    """The failure of a child run at ``depth`` (1: a child of a top-level run) beyond
    ``limit`` (``CONVEYOR_MAX_WORKFLOW_DEPTH``), naming the ``chain`` of workflow names
    from the root down to the child; None within the limit."""
    if depth <= limit:
        return None
    return (f"params.workflow: {DEPTH_EXCEEDED} of {limit} "
            f"(CONVEYOR_MAX_WORKFLOW_DEPTH): " + " -> ".join(chain))
