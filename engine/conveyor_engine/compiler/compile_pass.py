"""The compile pass: a :class:`~conveyor_engine.model.WorkflowSpec` checked and made a DAG.

Compilation is pure (no I/O) and total: it reports every problem it finds at once, so a
``kubectl apply`` of a broken manifest gets one complete answer rather than one error per
attempt. What it checks:

- the spec's shape (pydantic), with errors named by path (``tasks[2].retry.limit``, or by
  task name when the task has one);
- unique task and input names; ``dependsOn`` naming existing other tasks; no cycles;
- known task types and their params: unknown or missing keys, and literal values against
  the type's ``Params`` model or the schema the task's pool advertises (:mod:`.params`;
  templated values can only be checked when rendered); locks and rate limits across tasks
  (:mod:`.limits`); secrets against what the task's pool mounts;
- every ``${{ }}`` template and ``when`` condition: it parses, uses only ``inputs``,
  ``tasks``, ``task``, ``execution`` and (on the worker only) ``secrets``, refers to
  declared inputs and only to tasks upstream of it (which is what makes their outputs
  exist by the time it is rendered);
- failure handling (:mod:`.handlers`): task names unique across ``tasks``, ``onFailure``
  and ``finally``; ``dependsOn`` within a stage; handlers reading any main task, its
  outputs only under a ``has()`` guard (also for a ``continueOn.failed`` task's outputs);
  the run's outcome (``execution.phase`` ...) read only by handlers.

The content hash identifies a definition by meaning: equal specs hash equal however their
keys are ordered, and the stored JSON (:meth:`CompiledWorkflow.to_json`) recompiles to the
same hash.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from .. import locks, tasktypes
from ..expressions import (
    Condition,
    Expression,
    ExpressionError,
    Template,
    compile_condition,
    compile_template,
)
from ..handlers import MAIN
from ..inputtypes import type_mismatch
from ..model import TaskSpec, WorkflowSpec
from . import graph
from . import handlers as staging
from .compiled import CompiledTask, CompiledWorkflow, duration
from .limits import limit_problems
from .outputs import compile_outputs
from .params import param_problems
from .pools import PoolFacts, TaskTypesUnavailable, Unavailable, secret_problem
from .problems import (
    Problem,
    WorkflowInvalid,
    did_you_mean,
    spec_problems,
    with_yaml_hint,
)
from .subworkflows import (
    ChildWorkflowsNotFound,
    WorkflowFacts,
    missing_children,
    subworkflow_problems,
)


def canonical_json(spec: WorkflowSpec) -> str:
    """Canonical JSON of ``spec``: every field including defaults, keys sorted, compact.

    Each input's ``required`` is written as its effective value: an input without
    ``default`` is required, and a dump that writes ``default: null`` would otherwise read
    back as optional (pydantic counts it as set).
    """
    data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    if data.get("concurrency") is None:
        # Workflows without a concurrency rule hash as before it existed (issue 10).
        data.pop("concurrency", None)
    for raw, input_spec in zip(data["inputs"], spec.inputs, strict=True):
        raw["required"] = input_spec.is_required
        if raw.get("type") is None:
            # Untyped inputs hash as before types existed: no new version for old specs.
            raw.pop("type", None)
    for key, empty in (("onFailure", []), ("finally", []), ("activeDeadlineSeconds", None)):
        if data.get(key) == empty:
            data.pop(key, None)  # workflows without them hash as before (issue 12)
    for raw_task in [*data["tasks"], *data.get("onFailure", ()), *data.get("finally", ())]:
        if raw_task.get("continueOn") is None:
            raw_task.pop("continueOn", None)
        # Retry policies that leave jitter and retryOn at their defaults hash as before
        # those fields existed (issue 9): no new version for old specs.
        retry = raw_task.get("retry") or {}
        if retry.get("retryOn") is None:
            retry.pop("retryOn", None)
        if retry.get("jitter") == "Full":
            retry.pop("jitter", None)
        # Tasks without locks or a rate limit hash as before those fields existed (issue 10).
        if not raw_task.get("locks"):
            raw_task.pop("locks", None)
        if raw_task.get("rateLimit") is None:
            raw_task.pop("rateLimit", None)
    if not data.get("rateLimits"):
        data.pop("rateLimits", None)
    if not data.get("outputs"):
        # Workflows without outputs hash as before they existed (issue 12).
        data.pop("outputs", None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compile_workflow(name: str, spec: WorkflowSpec | Mapping[str, Any], *,
                     strict: bool = True,
                     pools: Mapping[str, PoolFacts] | None = None,
                     workflows: Mapping[str, WorkflowFacts] | None = None,
                     ) -> CompiledWorkflow:
    """Check ``spec`` and compile it (see the module docstring for the checks).

    ``spec`` is a :class:`WorkflowSpec` or its wire form (camelCase keys, as in the custom
    resource). Raises :class:`WorkflowInvalid` with every problem found.

    ``strict=False`` is for versions already stored (:meth:`CompiledWorkflow.from_json`):
    it skips the refusals that only protect a user from a spec that cannot do what it
    says (:data:`STRICT_ONLY`), so that a version accepted by an earlier release, whose
    runs may be in flight, still loads after an upgrade. Everything the engine needs to
    run a task is checked in both modes.

    ``pools`` (by pool name) are what the pools advertise and mount
    (:mod:`.pools`): with them, types that are not built in are checked against their
    task's pool's advertised schema and Secret references against its mounts; a pool
    missing from the mapping is checked locally, as without ``pools``. Raises
    :class:`~.pools.TaskTypesUnavailable` (only when nothing is invalid) when a pool that
    is not settled does not serve a task's type yet.

    ``workflows`` (by engine name) are the workflows registered so far
    (:class:`~.subworkflows.WorkflowFacts`): with them, ``workflow`` tasks are checked
    against their child (exists, no cycle back, inputs known and complete).
    """
    with gc_paused():
        if not isinstance(spec, WorkflowSpec):
            try:
                spec = WorkflowSpec.model_validate(spec)
            except ValidationError as exc:
                raise WorkflowInvalid(name, spec_problems(exc, spec)) from None
        return _Compilation(name, spec, strict=strict, pools=pools,
                            workflows=workflows).run()


#: Guards :data:`_pauses` and the collector's switch across threads (compiles run in
#: threads: ``asyncio.to_thread``).
_pause_lock = threading.Lock()
_pauses = 0
_resume_collector = False


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause CPython's cyclic garbage collector while a compile runs, then restore it.

    A compile allocates some 30 container objects per task (models, expressions,
    closures, sets) and keeps them, so the collector's generation-2 passes, which walk
    every live object and fire as the heap grows, cost about half of a 10,000-task
    compile (measured by ``bench/compile.py``). The compile itself makes no reference
    cycles to free; reference counting frees everything else as usual. Nested and
    concurrent pauses (threads) are counted: the collector comes back, if it was on, when
    the last one ends; its next pass then walks what the compile kept once.
    """
    global _pauses, _resume_collector
    with _pause_lock:
        if _pauses == 0:
            _resume_collector = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pauses -= 1
            if _pauses == 0 and _resume_collector:
                gc.enable()


#: What only a strict compile refuses: checks added after versions could already be stored.
STRICT_ONLY = (
    "an input default of another type than the input's type",
    "required: true next to a default",
    "timeout on a task type that holds no worker (wait)",
    "a constant when condition that is not a bool",
)


#: Unknown task names that get a "did you mean" suggestion in one compile.
MAX_SUGGESTIONS = 20


@dataclass(frozen=True, slots=True)
class _Part:
    """What compiling one task's expressions gave (``params`` None after a problem)."""

    params: Template | None
    when: Condition | None
    expressions: tuple[Expression, ...]
    refs: frozenset[str]
    timeout: timedelta | None
    locks: tuple[tuple[Template, int], ...] = ()
    rate_key: Template | None = None


class _Compilation:
    """The state of one compile; methods append to ``problems`` and carry on."""

    def __init__(self, name: str, spec: WorkflowSpec, *, strict: bool = True,
                 pools: Mapping[str, PoolFacts] | None = None,
                 workflows: Mapping[str, WorkflowFacts] | None = None):
        self.name = name
        self.pools = pools
        self.workflows = workflows
        self.unavailable: list[Unavailable] = []
        self.spec = spec
        self.strict = strict
        self.problems: list[Problem] = []
        self.tasks: dict[str, TaskSpec] = {}
        self.index: dict[str, int] = {}
        #: Each task's stage (:data:`conveyor_engine.handlers.STAGES`).
        self.stage: dict[str, str] = {}
        self.inputs: set[str] = set()
        self.suggestions = 0

    def suggest_task(self, name: str) -> str:
        """:func:`did_you_mean` among the task names, for the first
        :data:`MAX_SUGGESTIONS` unknown names only: each costs a scan of every name
        (difflib), so a spec with thousands of wrong names would compile in quadratic
        time."""
        self.suggestions += 1
        if self.suggestions > MAX_SUGGESTIONS:
            return ""
        return did_you_mean(name, self.tasks)

    def problem(self, task: str | None, path: str, message: str) -> None:
        """Record a problem at ``path`` of ``task`` (None: the workflow) and carry on."""
        self.problems.append(Problem(task, path, with_yaml_hint(path, message)))

    def run(self) -> CompiledWorkflow:
        self.check_names()
        deps = {name: self.dependencies(task) for name, task in self.tasks.items()}
        dependents = graph.reverse_edges(deps)
        self.check_cycles(dependents)
        compiled_parts = {name: self.compile_task(task) for name, task in self.tasks.items()}
        self.check_all_references(deps, compiled_parts)
        self.check_limits()
        concurrency_key = self.compile_concurrency_key()
        outputs, problems = compile_outputs(self.spec, self.tasks, self.inputs, self.stage)
        self.problems += problems
        missing = []
        if self.strict:
            self.problems += subworkflow_problems(self.name, self.spec, self.workflows)
            missing = missing_children(self.name, self.spec, self.workflows)
        if self.problems:
            raise WorkflowInvalid(self.name, self.problems)
        if missing:
            raise ChildWorkflowsNotFound(self.name, missing)
        if self.unavailable:
            raise TaskTypesUnavailable(self.name, self.unavailable)

        order = graph.topological(deps, dependents, self.index)
        position = {name: i for i, name in enumerate(order)}
        tasks = {}
        for name in order:
            part = compiled_parts[name]
            assert part.params is not None  # a template that failed to compile is a problem
            task = self.tasks[name]
            tasks[name] = CompiledTask(
                name=name,
                type=task.type,
                spec=task,
                params=part.params,
                when=part.when,
                depends_on=deps[name],
                dependents=tuple(sorted(dependents[name], key=position.__getitem__)),
                refs=part.refs,
                timeout=part.timeout,
                locks=part.locks,
                rate_key=part.rate_key,
                stage=self.stage[name],
            )
        text = canonical_json(self.spec)
        return CompiledWorkflow(
            name=self.name,
            spec=self.spec,
            content_hash="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
            tasks=tasks,
            roots=tuple(name for name in order
                        if not deps[name] and self.stage[name] == MAIN),
            pool=self.spec.pool,
            _stored=text,
            concurrency_key=concurrency_key,
            outputs=outputs,
        )

    def compile_concurrency_key(self) -> Expression | None:
        """Compile ``concurrency.key``: one bare CEL expression over ``inputs`` only (it is
        evaluated at submission, before any task ran), naming declared inputs."""
        rule = self.spec.concurrency
        if rule is None or rule.key is None:
            return None
        try:
            expression = compile_condition(rule.key, "concurrency.key",
                                           check_constant=False).expression
        except ExpressionError as exc:
            self.problem(None, "concurrency.key", exc.message)
            return None
        others = sorted(expression.roots - {"inputs"})
        if others:
            self.problem(None, "concurrency.key",
                         f"may use only inputs (it is evaluated when a run is submitted, "
                         f"before any task ran); {rule.key!r} uses {', '.join(others)}")
        for name in sorted(expression.inputs - self.inputs):
            self.problem(None, "concurrency.key", f"no input named {name!r}"
                         + did_you_mean(name, self.inputs))
        return expression

    def check_names(self) -> None:
        for i, input_spec in enumerate(self.spec.inputs):
            if input_spec.name in self.inputs:
                self.problem(None, f"inputs[{i}].name", f'duplicate input name "{input_spec.name}"')
            self.inputs.add(input_spec.name)
            # default: null is "no default" (how a stored required input reads back), so
            # it is never of the wrong type.
            if (self.strict and "default" in input_spec.model_fields_set
                    and input_spec.default is not None):
                mismatch = type_mismatch(input_spec.default, input_spec.type)
                if mismatch:
                    self.problem(None, f"inputs[{i}].default", mismatch)
                if input_spec.required:
                    self.problem(None, f"inputs[{i}].required",
                                 "a required input's default would never be used: remove "
                                 "the default, or set required: false")
        where: dict[str, str] = {}
        for position, (stage, i, task) in enumerate(staging.staged_tasks(self.spec)):
            here = staging.list_path(stage, i)
            if task.name in self.tasks:
                self.problem(
                    task.name, "name", f"duplicate task name ({where[task.name]} and {here})"
                )
                continue
            self.tasks[task.name] = task
            self.index[task.name] = position
            self.stage[task.name] = stage
            where[task.name] = here

    def dependencies(self, task: TaskSpec) -> tuple[str, ...]:
        found: list[str] = []
        for j, dep in enumerate(task.depends_on):
            if dep == task.name:
                self.problem(task.name, f"dependsOn[{j}]", "a task cannot depend on itself")
            elif dep not in self.tasks:
                self.problem(
                    task.name, f"dependsOn[{j}]",
                    f'no task named "{dep}"' + self.suggest_task(dep),
                )
            elif (why := staging.dependency_problem(
                    self.stage[task.name], dep, self.stage[dep])) is not None:
                self.problem(task.name, f"dependsOn[{j}]", why)
            elif dep not in found:
                found.append(dep)
        return tuple(found)

    def check_cycles(self, dependents: dict[str, list[str]]) -> None:
        for component in graph.strongly_connected(dependents, self.index):
            if len(component) < 2:
                continue
            start = min(component, key=self.index.__getitem__)
            cycle = graph.shortest_cycle(start, dependents, component)
            self.problem(start, "dependsOn", "cycle: " + " -> ".join(cycle))

    def compile_task(self, task: TaskSpec) -> _Part:
        """Params template, condition, expressions, refs and timeout of one task; the
        part's ``params`` is None after a problem."""
        self.check_params(task)
        expressions: list[Expression] = []
        params = when = None
        try:
            params = compile_template(task.params, "params")
            expressions.extend(params.expressions)
        except ExpressionError as exc:
            for error in exc.errors:
                self.problem(task.name, error.field, error.message)
        if task.when is not None:
            try:
                when = compile_condition(task.when, "when", check_constant=self.strict)
                expressions.append(when.expression)
            except ExpressionError as exc:
                self.problem(task.name, exc.field, exc.message)
        locks = []
        for i, lock in enumerate(task.locks):
            name = self.name_template(task, lock.name, f"locks[{i}].name", expressions)
            if name is not None:
                locks.append((name, lock.limit))
        rate_key = None
        if task.rate_limit is not None:
            rate_key = self.name_template(task, task.rate_limit.key, "rateLimit.key",
                                          expressions)
        self.check_secrets(task, expressions)
        refs = frozenset().union(*(e.references for e in expressions))
        timeout = duration(task.timeout, "timeout") if task.timeout is not None else None
        if self.strict and timeout is not None and task.type in tasktypes.registry():
            if not tasktypes.get(task.type).honours_timeout:
                self.problem(task.name, "timeout",
                             f'does not apply to a "{task.type}" task, which holds no worker '
                             f"while it waits (remove it)")
        return _Part(params, when, tuple(expressions), refs, timeout, tuple(locks), rate_key)

    def name_template(self, task: TaskSpec, text: str, where: str,
                      expressions: list[Expression]) -> Template | None:
        """A lock name or rate-limit key compiled as a template (its expressions join
        ``expressions``, so their references are checked and loaded); a literal one is
        checked against the name pattern now. None after a problem."""
        try:
            template = compile_template(text, where)
        except ExpressionError as exc:
            for error in exc.errors:
                self.problem(task.name, error.field, error.message)
            return None
        if any("secrets" in e.roots for e in template.expressions):
            # The rendered name is stored (lock holders, rate-limit keys), so it may not
            # carry a secret's value.
            self.problem(task.name, where, f"may not use secrets: its value is stored in "
                         f"PostgreSQL and Redis ({text!r})")
            return None
        expressions.extend(template.expressions)
        if not template.expressions:
            problem = locks.name_problem(text, where)
            if problem is not None:
                self.problem(task.name, where, problem.removeprefix(f"{where}: "))
                return None
        return template

    def check_limits(self) -> None:
        """Workflow-wide checks of locks and rate limits (:func:`.limits.limit_problems`)."""
        self.problems.extend(limit_problems(self.spec, self.tasks))

    def check_all_references(self, deps: dict[str, tuple[str, ...]],
                             parts: dict[str, _Part]) -> None:
        """Check every expression's references; "upstream of" is answered with one bit
        per referenced task (:func:`graph.ancestor_masks`), never a set per task."""
        referenced = sorted({ref for part in parts.values() for ref in part.refs
                             if ref in self.tasks})
        bits = {name: 1 << i for i, name in enumerate(referenced)}
        masks = graph.ancestor_masks(deps, self.index, bits)
        for name, part in parts.items():
            mask = masks[name]
            for expression in part.expressions:
                self.check_references(name, expression, mask, bits)

    def check_references(self, name: str, expression: Expression, upstream: int,
                         bits: Mapping[str, int]) -> None:
        """Problems for references to ``name`` itself, to unknown tasks, to tasks not
        upstream of it (``upstream``: its ancestors as a mask of ``bits``) and to inputs
        that are not declared."""
        where = expression.field
        stage = self.stage[name]
        self.check_handler_reads(name, expression)
        for ref in sorted(expression.references):
            if ref in self.tasks and (
                    why := staging.reference_problem(stage, ref, self.stage[ref])) is not None:
                self.problem(name, where, why)
            elif stage != MAIN and ref in self.tasks and self.stage[ref] == MAIN:
                continue  # a handler reads any main task (every one has ended)
            elif ref == name:
                self.problem(
                    name,
                    where,
                    f'expression refers to task "{ref}" itself; a task can read '
                    f"only tasks upstream of it",
                )
            elif ref not in self.tasks:
                self.problem(
                    name,
                    where,
                    f'expression refers to task "{ref}", which does not exist'
                    + self.suggest_task(ref),
                )
            elif not upstream & bits[ref]:
                self.problem(
                    name,
                    where,
                    f'expression refers to task "{ref}", which is not upstream of '
                    f'"{name}"; add it to dependsOn',
                )
        for input_name in sorted(expression.inputs - self.inputs):
            declared = ", ".join(sorted(self.inputs)) or "none"
            self.problem(
                name,
                where,
                f'expression refers to input "{input_name}", which is not declared '
                f"(declared inputs: {declared})",
            )

    def check_handler_reads(self, name: str, expression: Expression) -> None:
        """Outputs that may not exist read without a ``has()`` guard, and the run's
        outcome read outside a handler (:mod:`.handlers`)."""
        stage = self.stage[name]
        problem = staging.execution_fields_problem(expression, stage)
        if problem is not None:
            self.problem(name, expression.field, problem)
        for ref in sorted(expression.references & self.tasks.keys()):
            if ref == name:
                continue
            if stage != MAIN and self.stage[ref] == MAIN:
                why = f"{stage} tasks run whether or not {ref!r} succeeded"
            elif self.tasks[ref].continues_on_failure:
                why = f"{ref!r} has continueOn.failed, so it may have failed"
            else:
                continue
            problem = staging.unguarded_outputs_problem(expression, ref, why)
            if problem is not None:
                self.problem(name, expression.field, problem)

    def pool_facts(self, task: TaskSpec) -> tuple[str, PoolFacts | None]:
        """The task's pool (its own, else the workflow's) and what is known of it."""
        pool = task.pool or self.spec.pool
        return pool, (self.pools or {}).get(pool)

    def check_secrets(self, task: TaskSpec, expressions: list[Expression]) -> None:
        """Secrets read by name (``secrets.NAME``) must be listed by the task's pool's spec
        (a problem otherwise) and mounted by its live workers (else the workflow waits);
        only with pool facts. A secret chosen at run time (``secrets[inputs.x]``) cannot be
        checked here: the worker refuses it if missing."""
        pool, facts = self.pool_facts(task)
        if facts is None:
            return
        for expression in expressions:
            read = expression.reads.get("secrets") if "secrets" in expression.roots else None
            for secret in sorted(read or {}):
                if secret not in facts.secrets:
                    self.problems.append(secret_problem(task.name, expression.field, secret,
                                                        pool))
                elif facts.mounted is not None and secret not in facts.mounted:
                    self.unavailable.append(Unavailable(task.name, task.type, pool, secret))

    def check_params(self, task: TaskSpec) -> None:
        """The task's type and literal params (:func:`.params.param_problems`)."""
        pool, facts = self.pool_facts(task)
        problems, unavailable = param_problems(task, pool, facts)
        self.problems.extend(problems)
        self.unavailable.extend(unavailable)
