"""The workflow compiler: a :class:`~.model.WorkflowSpec` checked and turned into a DAG.

Compilation is pure (no I/O) and total: it reports every problem it finds at once, so a
``kubectl apply`` of a broken manifest gets one complete answer rather than one error per
attempt. What it checks:

- the spec's shape (pydantic), with errors named by path (``tasks[2].retry.limit``, or by
  task name when the task has one);
- unique task and input names; ``dependsOn`` naming existing other tasks; no cycles;
- known task types and their params: unknown or missing keys, and literal values against
  the type's ``Params`` model (templated values can only be checked when rendered);
- every ``${{ }}`` template and ``when`` condition: it parses, uses only ``inputs``,
  ``tasks`` and ``execution``, refers to declared inputs and only to tasks upstream of it
  (which is what makes their outputs exist by the time it is rendered).

The content hash identifies a definition by meaning: equal specs hash equal however their
keys are ordered, and the stored JSON (:meth:`CompiledWorkflow.to_json`) recompiles to the
same hash.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import heapq
import json
import math
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError

from . import tasktypes
from .expressions import (
    OPEN,
    Condition,
    Expression,
    ExpressionError,
    Template,
    compile_condition,
    compile_template,
    key_path,
)
from .inputtypes import type_mismatch
from .model import TaskSpec, WorkflowSpec, parse_duration

#: A params key "true" or "false" is almost always YAML 1.1 reading an unquoted y/n/on/off.
_YAML_BOOLEAN_KEY = re.compile(r"\.(true|false)(\.|\[|$)")
YAML_BOOLEAN_HINT = (" (the key was read as a boolean: YAML 1.1, which kubectl uses, turns an "
                     "unquoted y, n, yes, no, on or off into true or false; quote the key)")


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a workflow: the task (None for workflow-level problems), the
    field path within the task or spec (``params.url``, ``inputs[1].name``) and a message.

    ``str()`` reads ``task "d": params.url: <message>`` or ``<field>: <message>``.
    """

    task: str | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        if self.task is not None:
            return f'task "{self.task}": {where}{self.message}'
        return f"{where}{self.message}"


def _problem_order(problem: Problem) -> tuple[Any, ...]:
    return (problem.task is not None, problem.task or "", problem.field, problem.message)


class WorkflowInvalid(ValueError):
    """A workflow that cannot run; ``problems`` lists every reason, sorted.

    Sorted by task (workflow-level problems first), then field, then message, so the text
    is stable and a status condition does not flap between equivalent messages.
    """

    def __init__(self, name: str, problems: Iterable[Problem]):
        self.name = name
        self.problems: list[Problem] = sorted(set(problems), key=_problem_order)
        count = len(self.problems)
        lines = [f'workflow "{name}" is invalid ({count} problem{"s" if count != 1 else ""}):']
        lines.extend(f"- {problem}" for problem in self.problems)
        super().__init__("\n".join(lines))


class InvalidInputs(ValueError):
    """Inputs given at submission do not match the workflow's declared inputs.

    ``problems`` name each input as ``inputs.NAME`` (unknown, required but missing, or
    not of the declared type).
    """

    def __init__(self, problems: Iterable[Problem]):
        self.problems: list[Problem] = sorted(problems, key=_problem_order)
        super().__init__("; ".join(str(problem) for problem in self.problems))


@lru_cache(maxsize=1024)
def _duration(text: str, field_name: str) -> timedelta:
    return parse_duration(text, field_name)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledTask:
    """One task, ready to schedule.

    ``depends_on``: direct dependencies (declaration order, duplicates dropped);
    ``dependents``: tasks that list this one in ``dependsOn`` (topological order);
    ``upstream``: all transitive dependencies; ``refs``: tasks whose results ``params``
    or ``when`` read (always a subset of ``upstream``); ``timeout``: limit of one attempt.
    """

    name: str
    type: str
    spec: TaskSpec
    params: Template
    when: Condition | None
    depends_on: tuple[str, ...]
    dependents: tuple[str, ...]
    upstream: frozenset[str]
    refs: frozenset[str]
    timeout: timedelta | None

    def backoff(self, retry_number: int) -> timedelta:
        """The wait before retry ``retry_number`` (1 = the first retry).

        ``backoff * factor ** (retry_number - 1)``, capped at ``maxBackoff``: exponential
        backoff as in Argo Workflows' ``retryStrategy.backoff``. Raises ``ValueError`` for
        ``retry_number < 1``.
        """
        if retry_number < 1:
            raise ValueError(f"retry_number is 1-based, got {retry_number}")
        retry = self.spec.retry
        base = _duration(retry.backoff, "backoff")
        cap = _duration(retry.max_backoff, "maxBackoff")
        if base >= cap:
            return cap
        if not base:
            return base
        exponent = retry_number - 1
        # Compared in log space: factor ** exponent overflows a float long before any
        # retry limit a user could set would matter.
        if exponent * math.log(retry.factor) >= math.log(cap / base):
            return cap
        return min(base * retry.factor**exponent, cap)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledWorkflow:
    """A checked workflow.

    ``tasks`` is in topological order (ties broken by declaration order), ``roots`` are
    the tasks without dependencies in that order, ``content_hash`` is ``sha256:<hex>`` of
    :meth:`to_json`, ``pool`` the worker pool to run on.
    """

    name: str
    spec: WorkflowSpec
    content_hash: str
    tasks: dict[str, CompiledTask]
    roots: tuple[str, ...]
    pool: str
    _downstream: dict[str, frozenset[str]] = field(repr=False)
    _stored: str = field(repr=False)

    def downstream(self, name: str) -> frozenset[str]:
        """All tasks that depend on ``name``, directly or not; ``KeyError`` if no such task."""
        return self._downstream[name]

    def resolve_inputs(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """The inputs of one execution: ``given`` plus defaults, for every declared input.

        Optional inputs without a default resolve to ``None``, so ``inputs.NAME`` always
        exists in expressions. Raises :class:`InvalidInputs` naming every unknown input,
        every required input that is missing and every value not of its input's ``type``.
        """
        given = {} if given is None else given
        if not isinstance(given, Mapping):
            raise InvalidInputs([Problem(None, "inputs", "must be a map of names to values")])
        declared = {spec.name: spec for spec in self.spec.inputs}
        problems = []
        for key in given:
            if key not in declared:
                expected = ", ".join(declared) or "none"
                problems.append(
                    Problem(None, f"inputs.{key}", f"unknown input (declared inputs: {expected})")
                )
        resolved: dict[str, Any] = {}
        for name, spec in declared.items():
            if name in given:
                mismatch = type_mismatch(given[name], spec.type)
                if mismatch:
                    problems.append(Problem(None, f"inputs.{name}", mismatch))
                resolved[name] = given[name]
            elif spec.is_required:
                about = f": {spec.description}" if spec.description else ""
                problems.append(
                    Problem(None, f"inputs.{name}", f"required input is missing{about}")
                )
            else:
                resolved[name] = copy.deepcopy(spec.default)
        if problems:
            raise InvalidInputs(problems)
        return resolved

    def to_json(self) -> str:
        """The stored form: canonical JSON of the spec (what :attr:`content_hash` hashes)."""
        return self._stored

    @classmethod
    def from_json(cls, name: str, text: str | bytes) -> CompiledWorkflow:
        """Compile a stored form back, leniently (``strict=False``: a version an earlier
        release accepted still loads); raises :class:`WorkflowInvalid` if it cannot run."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WorkflowInvalid(name, [Problem(None, "spec", f"not valid JSON: {exc}")]) from None
        return compile_workflow(name, data, strict=False)


def canonical_json(spec: WorkflowSpec) -> str:
    """Canonical JSON of ``spec``: every field including defaults, keys sorted, compact.

    Each input's ``required`` is written as its effective value: an input without
    ``default`` is required, and a dump that writes ``default: null`` would otherwise read
    back as optional (pydantic counts it as set).
    """
    data = spec.model_dump(mode="json", by_alias=True, exclude_defaults=False)
    for raw, input_spec in zip(data["inputs"], spec.inputs, strict=True):
        raw["required"] = input_spec.is_required
        if raw.get("type") is None:
            # Untyped inputs hash as before types existed: no new version for old specs.
            raw.pop("type", None)
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compile_workflow(name: str, spec: WorkflowSpec | Mapping[str, Any], *,
                     strict: bool = True) -> CompiledWorkflow:
    """Check ``spec`` and compile it (see the module docstring for the checks).

    ``spec`` is a :class:`WorkflowSpec` or its wire form (camelCase keys, as in the custom
    resource). Raises :class:`WorkflowInvalid` with every problem found.

    ``strict=False`` is for versions already stored (:meth:`CompiledWorkflow.from_json`):
    it skips the refusals that only protect a user from a spec that cannot do what it
    says (:data:`STRICT_ONLY`), so that a version accepted by an earlier release, whose
    runs may be in flight, still loads after an upgrade. Everything the engine needs to
    run a task is checked in both modes.
    """
    if not isinstance(spec, WorkflowSpec):
        try:
            spec = WorkflowSpec.model_validate(spec)
        except ValidationError as exc:
            raise WorkflowInvalid(name, _spec_problems(exc, spec)) from None
    return _Compilation(name, spec, strict=strict).run()


#: What only a strict compile refuses: checks added after versions could already be stored.
STRICT_ONLY = (
    "an input default of another type than the input's type",
    "required: true next to a default",
    "timeout on a task type that holds no worker (wait)",
    "a constant when condition that is not a bool",
)


class _Compilation:
    """The state of one compile; methods append to ``problems`` and carry on."""

    def __init__(self, name: str, spec: WorkflowSpec, *, strict: bool = True):
        self.name = name
        self.spec = spec
        self.strict = strict
        self.problems: list[Problem] = []
        self.tasks: dict[str, TaskSpec] = {}
        self.index: dict[str, int] = {}
        self.inputs: set[str] = set()

    def problem(self, task: str | None, field_path: str, message: str) -> None:
        if _YAML_BOOLEAN_KEY.search(field_path):
            message += YAML_BOOLEAN_HINT
        self.problems.append(Problem(task, field_path, message))

    def run(self) -> CompiledWorkflow:
        self.check_names()
        deps = {name: self.dependencies(task) for name, task in self.tasks.items()}
        dependents: dict[str, list[str]] = {name: [] for name in self.tasks}
        for name, direct in deps.items():
            for dep in direct:
                dependents[dep].append(name)
        self.check_cycles(dependents)
        upstream = _ancestors(deps)
        compiled_parts = {
            name: self.compile_task(task, upstream[name]) for name, task in self.tasks.items()
        }
        if self.problems:
            raise WorkflowInvalid(self.name, self.problems)

        order = _topological(deps, dependents, self.index)
        position = {name: i for i, name in enumerate(order)}
        tasks = {}
        for name in order:
            params, when, refs, timeout = compiled_parts[name]
            assert params is not None  # a template that failed to compile is a problem
            task = self.tasks[name]
            tasks[name] = CompiledTask(
                name=name,
                type=task.type,
                spec=task,
                params=params,
                when=when,
                depends_on=deps[name],
                dependents=tuple(sorted(dependents[name], key=position.__getitem__)),
                upstream=upstream[name],
                refs=refs,
                timeout=timeout,
            )
        downstream: dict[str, set[str]] = {name: set() for name in order}
        for name in order:
            for ancestor in upstream[name]:
                downstream[ancestor].add(name)
        text = canonical_json(self.spec)
        return CompiledWorkflow(
            name=self.name,
            spec=self.spec,
            content_hash="sha256:" + hashlib.sha256(text.encode()).hexdigest(),
            tasks=tasks,
            roots=tuple(name for name in order if not deps[name]),
            pool=self.spec.pool,
            _downstream={name: frozenset(found) for name, found in downstream.items()},
            _stored=text,
        )

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
        for i, task in enumerate(self.spec.tasks):
            if task.name in self.tasks:
                first = self.index[task.name]
                self.problem(
                    task.name, "name", f"duplicate task name (tasks[{first}] and tasks[{i}])"
                )
                continue
            self.tasks[task.name] = task
            self.index[task.name] = i

    def dependencies(self, task: TaskSpec) -> tuple[str, ...]:
        found: list[str] = []
        for j, dep in enumerate(task.depends_on):
            if dep == task.name:
                self.problem(task.name, f"dependsOn[{j}]", "a task cannot depend on itself")
            elif dep not in self.tasks:
                self.problem(
                    task.name, f"dependsOn[{j}]", f'no task named "{dep}"' + _hint(dep, self.tasks)
                )
            elif dep not in found:
                found.append(dep)
        return tuple(found)

    def check_cycles(self, dependents: dict[str, list[str]]) -> None:
        for component in _strongly_connected(dependents, self.index):
            if len(component) < 2:
                continue
            start = min(component, key=self.index.__getitem__)
            cycle = _shortest_cycle(start, dependents, component)
            self.problem(start, "dependsOn", "cycle: " + " -> ".join(cycle))

    def compile_task(
        self, task: TaskSpec, upstream: frozenset[str]
    ) -> tuple[Template | None, Condition | None, frozenset[str], timedelta | None]:
        """Params template, condition, refs and timeout; params is None after a problem."""
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
        for expression in expressions:
            self.check_references(task.name, expression, upstream)
        refs = frozenset().union(*(e.references for e in expressions))
        timeout = _duration(task.timeout, "timeout") if task.timeout is not None else None
        if self.strict and timeout is not None and task.type in tasktypes.REGISTRY:
            if not tasktypes.REGISTRY[task.type].honours_timeout:
                self.problem(task.name, "timeout",
                             f'does not apply to a "{task.type}" task, which holds no worker '
                             f"while it waits (remove it)")
        return params, when, refs, timeout

    def check_references(self, name: str, expression: Expression, upstream: frozenset[str]) -> None:
        where = expression.field
        for ref in sorted(expression.references):
            if ref == name:
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
                    + _hint(ref, self.tasks),
                )
            elif ref not in upstream:
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

    def check_params(self, task: TaskSpec) -> None:
        try:
            task_type = tasktypes.get(task.type)
        except KeyError:
            known = ", ".join(tasktypes.known())
            self.problem(
                task.name, "type", f'unknown task type "{task.type}" (known types: {known})'
            )
            return
        model: type[BaseModel] = task_type.Params
        if model.model_config.get("extra") != "allow":
            keys = _param_keys(model)
            for key in task.params:
                if key not in keys:
                    self.problem(
                        task.name,
                        key_path("params", key),
                        f'unknown parameter for type "{task.type}" (known: '
                        f"{', '.join(sorted(keys))}){_hint(key, keys)}",
                    )
        templated = list(_templated_paths(task.params, ()))
        try:
            model.model_validate(task.params)
        except ValidationError as exc:
            for error in exc.errors(include_url=False):
                loc = tuple(error["loc"])
                if error["type"] == "extra_forbidden":
                    continue  # reported above, with the known keys
                if templated and (not loc or any(loc[: len(t)] == t for t in templated)):
                    continue  # depends on a value only known once templates are rendered
                self.problem(task.name, _path(loc, "params"), _message(error, "parameter"))
        except Exception as exc:  # a type's own validator misbehaving must not hide others
            self.problem(task.name, "params", f"could not be validated: {exc}")


# ------------------------------------------------------------------ graph helpers


def _ancestors(deps: dict[str, tuple[str, ...]]) -> dict[str, frozenset[str]]:
    """Transitive dependencies of every task (terminates on cycles too)."""
    result = {}
    for name in deps:
        seen: set[str] = set()
        queue = deque(deps[name])
        while queue:
            dep = queue.popleft()
            if dep not in seen:
                seen.add(dep)
                queue.extend(deps[dep])
        result[name] = frozenset(seen)
    return result


def _topological(
    deps: dict[str, tuple[str, ...]], dependents: dict[str, list[str]], index: dict[str, int]
) -> list[str]:
    """Kahn's algorithm; among ready tasks the one declared first comes first."""
    waiting = {name: len(direct) for name, direct in deps.items()}
    ready = [(index[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in dependents[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (index[child], child))
    return order


def _strongly_connected(
    edges: dict[str, list[str]], index: dict[str, int]
) -> Iterator[frozenset[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit)."""
    counter = 0
    number: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(edges, key=index.__getitem__):
        if root in number:
            continue
        work = [(root, iter(edges[root]))]
        number[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in number:
                    number[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], number[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == number[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                yield frozenset(component)


def _shortest_cycle(
    start: str, edges: dict[str, list[str]], component: frozenset[str]
) -> list[str]:
    """The shortest path ``start -> ... -> start`` inside one strongly connected component."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in edges[node]:
            if child not in component:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError("a strongly connected component always has a cycle")


# ------------------------------------------------------------------ params and messages


def _param_keys(model: type[BaseModel]) -> set[str]:
    """Param names as written in manifests: the alias of each field (camelCase)."""
    return {info.alias or name for name, info in model.model_fields.items()}


def _templated_paths(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """Locations (pydantic ``loc`` tuples) of strings holding templates."""
    if isinstance(value, str):
        if OPEN in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _templated_paths(item, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _templated_paths(item, (*path, i))


def _path(loc: Iterable[Any], base: str = "") -> str:
    text = base
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = key_path(text, part) if text else str(part)
    return text


def _message(error: Mapping[str, Any], noun: str = "field") -> str:
    """A pydantic error message without pydantic's prefixes or a repeated field name."""
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "missing":
        return f"required {noun} is missing"
    if kind == "extra_forbidden":
        return f"unknown {noun}"
    if kind == "too_short" and loc == ("tasks",):
        return "a workflow needs at least one task"
    if kind == "string_pattern_mismatch" and loc[:1] == ("inputs",) and loc[-1] == "name":
        return (
            f"{error.get('input')!r} is not a valid input name: use letters, digits and '_', "
            f"not starting with a digit (at most 63), so it can be read as inputs.NAME"
        )
    if kind == "string_pattern_mismatch" and loc and loc[-1] in ("name", "pool"):
        return (
            f"{error.get('input')!r} is not a valid name: use lowercase letters, digits, '-' "
            f"and '_', starting with a letter and ending with a letter or digit (at most 63)"
        )
    message = str(error["msg"])
    message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if loc and isinstance(loc[-1], str):
        # our validators say "backoff: ..." themselves; the path already names the field
        for name in {loc[-1], _snake(loc[-1])}:
            message = message.removeprefix(f"{name}: ")
    return message


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _spec_problems(exc: ValidationError, raw: Any) -> list[Problem]:
    """Pydantic errors of a whole spec as problems, naming tasks by name where possible."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        task = None
        if len(loc) > 2 and loc[0] == "tasks" and isinstance(loc[1], int):
            task = _raw_task_name(raw, loc[1])
            if task is not None:
                loc = loc[2:]
        problems.append(Problem(task, _path(loc), _message(error)))
    return problems


def _raw_task_name(raw: Any, i: int) -> str | None:
    try:
        name = raw["tasks"][i]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) and name else None


def _hint(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""
