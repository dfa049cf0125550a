"""A workflow's declared ``outputs``: compiled and checked, and evaluated once a run
Succeeded (pure).

``outputs: [{name, value}]``: each ``value`` may hold ``${{ }}`` templates over
``inputs``, ``execution`` and any task's ``outputs`` and ``phase`` (every task is final when
they are evaluated, so no ``dependsOn`` is needed). Soundness rule: in a run that
Succeeded, a task may not have succeeded when it has a ``when`` (it may be ``Skipped``),
has ``continueOn.failed`` (it may be ``Failed``) or is an ``onFailure`` handler (``Skipped``
whenever the run succeeds); such a task's outputs are then empty, so an output that reads
``tasks.X.outputs`` of it must also read ``tasks.X.phase`` or use ``has()`` (a guard:
``tasks.x.phase == "Succeeded" ? tasks.x.outputs.n : 0``); otherwise it is a compile
problem (:func:`may_not_succeed`). A dependent of a skipped task still runs, so nothing
else is skippable; any other task of a Succeeded run Succeeded. What a
guard cannot prove (an output key a task type may not return) fails at run time: the run
ends ``Failed`` with reason ``OutputsFailed`` naming the output (:func:`evaluate_outputs`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..expressions import ExpressionError, Template, compile_template
from ..expressions.values import to_json_value
from ..model import WorkflowSpec
from .problems import Problem, did_you_mean

#: The run's reason when an output cannot be evaluated.
OUTPUTS_FAILED = "OutputsFailed"


@dataclass(frozen=True, slots=True)
class CompiledOutputs:
    """The compiled ``outputs`` (name -> template) and the tasks they read."""

    templates: Mapping[str, Template]
    references: frozenset[str]


class OutputsFailed(Exception):
    """An output could not be evaluated; ``str()`` names it: ``outputs.total: ...``."""


def may_not_succeed(task: Any, stage: str = "main") -> str | None:
    """Why ``task`` (a TaskSpec in ``stage``: ``main``, ``onFailure`` or ``finally``) may
    end other than ``Succeeded`` in a run that Succeeded (a phrase for a problem), or None
    when it cannot."""
    if stage == "onFailure":
        return "is an onFailure task, Skipped whenever the run succeeds"
    if task.when is not None:
        return "has a when and may be Skipped"
    if task.continues_on_failure:
        return "has continueOn.failed and may have Failed"
    return None


def compile_outputs(spec: WorkflowSpec, tasks: Mapping[str, Any], inputs: set[str],
                    stages: Mapping[str, str] | None = None,
                    ) -> tuple[CompiledOutputs, list[Problem]]:
    """Compile ``spec.outputs`` against the workflow's ``tasks`` (name -> TaskSpec, with
    their ``stages``, name -> ``main``/``onFailure``/``finally``; main when absent) and
    declared ``inputs``; every problem is returned (field ``outputs[i].value`` or
    ``outputs[i].name``), none raised."""
    problems: list[Problem] = []
    templates: dict[str, Template] = {}
    for i, output in enumerate(spec.outputs):
        where = f"outputs[{i}].value"
        if output.name in templates:
            problems.append(Problem(None, f"outputs[{i}].name",
                                    f'duplicate output name "{output.name}"'))
            continue
        try:
            template = compile_template(output.value, where)
        except ExpressionError as exc:
            problems += [Problem(None, e.field, e.message) for e in exc.errors]
            continue
        if "secrets" in template.roots or "task" in template.roots:
            problems.append(Problem(None, where, "may use only inputs, tasks and execution "
                                    "(outputs are stored, and no task is running)"))
            continue
        problems += _reference_problems(template, where, tasks, inputs, stages or {})
        templates[output.name] = template
    refs = frozenset().union(*(t.references for t in templates.values()))
    return CompiledOutputs(templates, refs), problems


def _reference_problems(template: Template, where: str, tasks: Mapping[str, Any],
                        inputs: set[str], stages: Mapping[str, str]) -> list[Problem]:
    problems = []
    for ref in sorted(template.references):
        if ref not in tasks:
            problems.append(Problem(None, where, f'refers to task "{ref}", which does not '
                                    f"exist{did_you_mean(ref, tasks)}"))
    declared = ", ".join(sorted(inputs)) or "none"
    for name in sorted(template.inputs - inputs):
        problems.append(Problem(None, where, f'refers to input "{name}", which is not '
                                f"declared (declared inputs: {declared})"))
    for expression in template.expressions:
        read = expression._reads.get("tasks") if "tasks" in expression.roots else None
        guarded = "has(" in expression.text
        for ref, fields in sorted((read or {}).items()):
            task = tasks.get(ref)
            why = None if task is None else may_not_succeed(task, stages.get(ref, "main"))
            if why is None or guarded:
                continue
            if isinstance(fields, Mapping) and "outputs" in fields and "phase" not in fields:
                problems.append(Problem(None, where, (
                    f'reads tasks.{ref}.outputs, but "{ref}" {why} '
                    f"(its outputs are then empty); guard it with has(tasks.{ref}.outputs."
                    f'...) or tasks.{ref}.phase == "Succeeded"')))
    return problems


def evaluate_outputs(outputs: CompiledOutputs, context: Mapping[str, Any]) -> dict[str, Any]:
    """The outputs' values (JSON values) in ``context`` (``{"inputs", "tasks": {name:
    {"phase", "outputs"}}, "execution"}``). Raises :class:`OutputsFailed` naming the first
    output that cannot be evaluated."""
    values = {}
    for name, template in outputs.templates.items():
        try:
            values[name] = to_json_value(template.render(context))
        except ExpressionError as exc:
            raise OutputsFailed(f"outputs.{name}: {exc.message}") from None
    return values
