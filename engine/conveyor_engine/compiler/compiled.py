"""The compiled form of a workflow: what the scheduler and the workers use.

:class:`CompiledWorkflow` holds the checked spec, its tasks in topological order with
their DAG facts (:class:`CompiledTask`) and the content hash. Built by
:func:`conveyor_engine.compiler.compile_workflow`; never constructed by hand.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import lru_cache
from typing import Any

from ..concurrency import Concurrency, Policy, group_name
from ..expressions import Condition, Expression, ExpressionError, Template, to_json_value, to_text
from ..inputtypes import type_mismatch
from ..model import TaskSpec, WorkflowSpec, parse_duration
from ..outputs import json_size
from ..retries import backoff_ceiling, jittered, retry_delay
from . import graph
from .outputs import CompiledOutputs, evaluate_outputs
from .problems import InvalidInputs, Problem, WorkflowInvalid


@lru_cache(maxsize=1024)
def duration(text: str, field_name: str) -> timedelta:
    """:func:`~conveyor_engine.model.parse_duration`, cached (backoffs are parsed per retry)."""
    return parse_duration(text, field_name)


@dataclass(frozen=True, slots=True, eq=False)
class CompiledTask:
    """One task, ready to schedule.

    ``depends_on``: direct dependencies (declaration order, duplicates dropped);
    ``dependents``: tasks that list this one in ``dependsOn`` (topological order);
    ``refs``: tasks whose results ``params`` or ``when`` read (always upstream of it:
    :meth:`CompiledWorkflow.upstream`); ``timeout``: limit of one attempt.

    Transitive up- and downstream sets are not stored per task: on a chain of ``n`` tasks
    they hold ``n**2 / 2`` names (issue 9); the workflow computes one on demand.
    """

    name: str
    type: str
    spec: TaskSpec
    params: Template
    when: Condition | None
    depends_on: tuple[str, ...]
    dependents: tuple[str, ...]
    refs: frozenset[str]
    timeout: timedelta | None
    #: ``locks``: each declared lock's name template and limit (:mod:`conveyor_engine.locks`);
    #: ``rate_key``: the template of ``rateLimit.key`` (None: no rate limit).
    locks: tuple[tuple[Template, int], ...] = ()
    rate_key: Template | None = None
    #: ``main``, ``onFailure`` or ``finally`` (:mod:`conveyor_engine.handlers`).
    stage: str = "main"

    @property
    def handler(self) -> bool:
        """True for an ``onFailure`` or ``finally`` task."""
        return self.stage != "main"

    @property
    def continues_on_failure(self) -> bool:
        """True when ``continueOn.failed`` is set: its failure lets the run go on."""
        return self.spec.continues_on_failure

    @property
    def initial_deps(self) -> int:
        """Dependencies its row starts with: its ``dependsOn``, plus the gate (the end of
        the main tasks) for a handler task."""
        return len(self.depends_on) + (1 if self.handler else 0)

    @property
    def gated(self) -> bool:
        """True when the task takes locks or a rate-limit token before it runs."""
        return bool(self.locks) or self.rate_key is not None

    def backoff(self, retry_number: int) -> timedelta:
        """The ceiling of the wait before retry ``retry_number`` (1 = the first retry).

        ``backoff * factor ** (retry_number - 1)``, capped at ``maxBackoff``: exponential
        backoff as in Argo Workflows' ``retryStrategy.backoff``
        (:func:`~conveyor_engine.retries.backoff_ceiling`). Raises ``ValueError`` for
        ``retry_number < 1``.
        """
        retry = self.spec.retry
        return backoff_ceiling(duration(retry.backoff, "backoff"), retry.factor,
                               duration(retry.max_backoff, "maxBackoff"), retry_number)

    def retry_delay(self, retry_number: int, *, retry_after: float | None = None,
                    rand: Callable[[], float] = random.random) -> timedelta:
        """The wait before retry ``retry_number``: :meth:`backoff` under the policy's
        ``jitter`` (``rand`` gives floats in ``[0, 1)``), raised to ``retry_after`` seconds
        (a server's ``Retry-After``) up to ``maxBackoff``. See
        :mod:`conveyor_engine.retries`; raises ``ValueError`` for ``retry_number < 1``."""
        retry = self.spec.retry
        wait = jittered(self.backoff(retry_number), retry.jitter, rand)
        return retry_delay(wait, retry_after, duration(retry.max_backoff, "maxBackoff"))


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
    _stored: str = field(repr=False)
    #: ``spec.concurrency.key`` compiled (None: no key, or no concurrency rule).
    concurrency_key: Expression | None = field(default=None, repr=False)
    #: ``spec.outputs`` compiled (:mod:`.outputs`; None: built without them).
    outputs: CompiledOutputs | None = field(default=None, repr=False)

    @property
    def handlers(self) -> tuple[str, ...]:
        """The ``onFailure`` and ``finally`` tasks' names, in topological order."""
        return tuple(name for name, task in self.tasks.items() if task.handler)

    @property
    def deadline_seconds(self) -> int | None:
        """``spec.activeDeadlineSeconds``: the default deadline of its runs (None: none)."""
        return self.spec.active_deadline_seconds

    def concurrency(self, inputs: Mapping[str, Any]) -> Concurrency | None:
        """The concurrency group a run with (resolved) ``inputs`` joins, or None when the
        workflow has no ``spec.concurrency``. The group is the workflow's name, plus the
        key's value as text when ``key`` is set (:func:`conveyor_engine.concurrency.
        group_name`). Raises :class:`InvalidInputs` naming ``concurrency.key`` when the key
        cannot be evaluated with these inputs."""
        rule = self.spec.concurrency
        if rule is None:
            return None
        key = None
        if self.concurrency_key is not None:
            try:
                value = self.concurrency_key.evaluate({"inputs": dict(inputs)})
            except ExpressionError as exc:
                raise InvalidInputs([Problem(None, "concurrency.key", exc.message)]) from None
            key = to_text(to_json_value(value))
        return Concurrency(group_name(self.name, key), rule.limit, Policy(rule.policy))

    def downstream(self, name: str) -> frozenset[str]:
        """All tasks that depend on ``name``, directly or not; ``KeyError`` if no such task.

        Computed on each call, breadth-first over ``dependents``: the cost is the size of
        the answer (the worker asks only when a task fails for good, to skip them)."""
        return graph.reachable(name, _Edges(self.tasks, "dependents"))

    def upstream(self, name: str) -> frozenset[str]:
        """All tasks ``name`` depends on, directly or not; ``KeyError`` if no such task."""
        return graph.reachable(name, _Edges(self.tasks, "depends_on"))

    def resolve_inputs(self, given: Mapping[str, Any] | None, *,
                       max_bytes: int | None = None) -> dict[str, Any]:
        """The inputs of one execution: ``given`` plus defaults, for every declared input.

        Optional inputs without a default resolve to ``None``, so ``inputs.NAME`` always
        exists in expressions. Raises :class:`InvalidInputs` naming every unknown input,
        every required input that is missing and every value not of its input's ``type``;
        with ``max_bytes``, also inputs larger than that serialised as compact JSON
        (UTF-8), naming the size, the limit and the largest input.
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
        if max_bytes is not None:
            oversize = inputs_size_problem(resolved, max_bytes)
            if oversize is not None:
                raise InvalidInputs([oversize])
        return resolved

    def evaluate_outputs(self, context: Mapping[str, Any]) -> dict[str, Any]:
        """The declared outputs' values in ``context`` (see :func:`.outputs.
        evaluate_outputs`; ``{}`` when none are declared). Raises :class:`.outputs.
        OutputsFailed` naming the output that cannot be evaluated."""
        if self.outputs is None or not self.outputs.templates:
            return {}
        return evaluate_outputs(self.outputs, context)

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
        from .compile_pass import compile_workflow  # the pass builds this type: import late

        return compile_workflow(name, data, strict=False)


def inputs_size_problem(inputs: Mapping[str, Any], max_bytes: int) -> Problem | None:
    """A problem when ``inputs`` serialised (:func:`json_size`) exceed ``max_bytes``:
    ``inputs: 10485779 bytes as JSON, more than the limit of 1048576 bytes
    (CONVEYOR_MAX_INPUTS_BYTES); the largest is inputs.blob (10485762 bytes)``."""
    size = json_size(dict(inputs))
    if size <= max_bytes:
        return None
    largest = max(inputs, key=lambda name: json_size(inputs[name]))
    return Problem(None, "inputs",
                   f"{size} bytes as JSON, more than the limit of {max_bytes} bytes "
                   f"(CONVEYOR_MAX_INPUTS_BYTES); the largest is inputs.{largest} "
                   f"({json_size(inputs[largest])} bytes)")


class _Edges(Mapping[str, tuple[str, ...]]):
    """One edge attribute of compiled tasks (``depends_on`` or ``dependents``) read as a
    graph mapping for :mod:`.graph`, without copying it."""

    __slots__ = ("_attribute", "_tasks")

    def __init__(self, tasks: Mapping[str, CompiledTask], attribute: str) -> None:
        self._tasks = tasks
        self._attribute = attribute

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return getattr(self._tasks[name], self._attribute)

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)
