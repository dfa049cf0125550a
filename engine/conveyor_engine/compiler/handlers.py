"""Compile-time checks of failure handling: handler task lists (``onFailure``, ``finally``),
``continueOn`` and the fields only handlers may read. Pure; used by :mod:`.compile_pass`.

What is sound (see :mod:`conveyor_engine.handlers` for when handlers run):

* ``dependsOn`` stays within a stage: a main task cannot wait for a handler (handlers run
  after the main DAG ended) and a handler needs no ``dependsOn`` on a main task (every main
  task has ended when it runs); handlers may depend on handlers of their own list.
* a handler may read any main task: ``tasks.x.phase`` and ``tasks.x.error`` always exist;
  ``tasks.x.outputs`` exists only if ``x`` succeeded, so a handler must guard it with
  ``has(tasks.x.outputs...)`` in the same expression. The same holds for any task reading
  a task with ``continueOn.failed`` (it may have failed).
* ``execution.phase``, ``execution.reason`` and ``execution.failedTasks`` (the main DAG's
  outcome) exist only in handlers.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from ..expressions import Expression
from ..handlers import MAIN
from ..model import TaskSpec, WorkflowSpec

#: ``execution`` fields that only handler tasks may read (the main DAG's outcome).
HANDLER_EXECUTION_FIELDS = frozenset({"phase", "reason", "failedTasks"})


def staged_tasks(spec: WorkflowSpec) -> Iterator[tuple[str, int, TaskSpec]]:
    """``(stage, index in its list, task)`` of every task: main, onFailure, finally."""
    for i, task in enumerate(spec.tasks):
        yield MAIN, i, task
    for i, task in enumerate(spec.on_failure):
        yield "onFailure", i, task
    for i, task in enumerate(spec.finally_):
        yield "finally", i, task


def list_path(stage: str, index: int) -> str:
    """Where a task sits in the spec: ``tasks[2]``, ``onFailure[0]``, ``finally[1]``."""
    return f"{'tasks' if stage == MAIN else stage}[{index}]"


def _a(stage: str) -> str:
    """``stage`` with its article: "an onFailure", "a finally"."""
    return f"{'an' if stage[0] in 'aeiou' else 'a'} {stage}"


def dependency_problem(stage: str, dep: str, dep_stage: str) -> str | None:
    """Why a task of ``stage`` may not list ``dep`` (of ``dep_stage``) in ``dependsOn``."""
    if stage == dep_stage:
        return None
    if stage == MAIN:
        return (f'"{dep}" is {_a(dep_stage)} task; main tasks cannot depend on handler '
                f"tasks, which run after every main task ended")
    if dep_stage == MAIN:
        return (f'"{dep}" is a main task; {stage} tasks run after every main task ended, '
                f"so no dependsOn is needed: read it as tasks.{dep}.phase / .error")
    return (f'"{dep}" is {_a(dep_stage)} task; {_a(stage)} task may depend only on tasks of '
            f"its own list")


def reference_problem(stage: str, ref: str, ref_stage: str) -> str | None:
    """Why an expression of a task of ``stage`` may not read ``ref`` (of ``ref_stage``);
    None when it may as far as stages go (main tasks are then checked to be upstream)."""
    if stage == MAIN and ref_stage != MAIN:
        return (f'expression refers to task "{ref}", {_a(ref_stage)} task; main tasks cannot '
                f"read handler tasks, which run after them")
    if stage != MAIN and ref_stage != MAIN and ref_stage != stage:
        return (f'expression refers to task "{ref}" of {ref_stage}; {_a(stage)} task may read '
                f"main tasks and tasks of its own list upstream of it")
    return None


def _guard_re(ref: str) -> re.Pattern[str]:
    name = re.escape(ref)
    return re.compile(rf"""\bhas\(\s*tasks\s*(?:\.\s*{name}\b|\[\s*['"]{name}['"]\s*\])"""
                      rf"""\s*(?:\.\s*outputs\b|\[\s*['"]outputs['"]\s*\])""")


def reads_outputs(expression: Expression, ref: str) -> bool:
    """True when ``expression`` may read ``tasks.<ref>.outputs`` (or all of ``tasks.<ref>``)."""
    tasks = expression.reads.get("tasks", {}) if "tasks" in expression.roots else {}
    if tasks is None:
        return True
    fields = tasks.get(ref, {}) if ref in tasks else {}
    return fields is None or "outputs" in fields


def unguarded_outputs_problem(expression: Expression, ref: str, why: str) -> str | None:
    """A problem when ``expression`` reads ``tasks.<ref>.outputs`` without a ``has()``
    guard on them in the same expression; ``why`` says why they may not exist."""
    if not reads_outputs(expression, ref) or _guard_re(ref).search(expression.text):
        return None
    return (f"tasks.{ref}.outputs may not exist ({why}); guard the read, e.g. "
            f"has(tasks.{ref}.outputs.id) ? tasks.{ref}.outputs.id : '', or read "
            f"tasks.{ref}.phase and tasks.{ref}.error, which always exist")


def execution_fields_problem(expression: Expression, stage: str) -> str | None:
    """A problem when a main task reads the run's outcome (``execution.phase`` ...), which
    exists only once the main DAG ended, in handler tasks."""
    if stage != MAIN or "execution" not in expression.roots:
        return None
    read = expression.reads.get("execution")
    fields = set(HANDLER_EXECUTION_FIELDS) if read is None else set(read) & HANDLER_EXECUTION_FIELDS
    if read is None or not fields:
        return None
    return (f"execution.{', execution.'.join(sorted(fields))}: only onFailure and finally "
            f"tasks may read it (the run's outcome once its main tasks ended)")
