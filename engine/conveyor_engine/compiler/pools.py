"""What the compiler may know of the pools a workflow runs on (issue 11 item 2), and the
checks it makes with it. Pure: the facts are gathered by the caller (the operator).

Without pool facts the compiler checks task types against the local registry only (the
engine alone, tests, benchmarks). With them:

- a built-in type (distribution ``conveyor``: every worker has it) is still checked by its
  local model;
- any other type is checked against the params JSON Schema its task's pool advertises
  (JSON Schema 2020-12, pydantic's ``model_json_schema``, ``$defs`` resolved in place);
- a type the pool does not advertise is an error when the pool is settled, else the
  workflow waits (:class:`TaskTypesUnavailable`);
- a task reading ``secrets.NAME`` needs its pool's spec to list Secret ``NAME``; when the
  spec lists it but not every live worker has mounted it yet (a rollout, a pool never
  advertised), the workflow waits (:class:`TaskTypesUnavailable`, naming the Secret).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from ..expressions import key_path
from .problems import Problem, did_you_mean, field_path

#: The distribution of the built-in task types: every worker of every pool has them.
BUILTIN_DISTRIBUTION = "conveyor"


@dataclass(frozen=True, slots=True)
class PoolFacts:
    """One pool as the compiler sees it.

    ``types``: the params JSON Schema of each task type the pool serves (its live workers'
    advertisement, else its last known one); ``settled``: the pool's workers are all up and
    all advertised, so a type missing from ``types`` is really missing (see the operator's
    ``pools/catalogue.py`` for the rule); ``secrets``: names of the Secrets its spec lists
    (``WorkerPool.spec.secrets``); ``mounted``: names of the Secrets every live worker
    advertises as mounted (else the last advertisement's), None when not reported (then the
    spec is trusted).
    """

    types: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    settled: bool = False
    secrets: frozenset[str] = frozenset()
    mounted: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Unavailable:
    """A task whose type no running worker of its pool has yet, or (``secret`` set) whose
    Secret, listed in the pool's spec, not every live worker has mounted yet."""

    task: str
    type: str
    pool: str
    secret: str | None = None

    def __str__(self) -> str:
        if self.secret is not None:
            return (f"not every running worker of pool {self.pool!r} has secret "
                    f"{self.secret!r} mounted yet (task {self.task!r})")
        return (f"no running worker of pool {self.pool!r} has task type {self.type!r} yet "
                f"(task {self.task!r})")


class TaskTypesUnavailable(Exception):
    """The workflow is valid as far as can be told, but some of its task types are not
    served by any running worker of their pool yet (a pool at zero that never advertised
    them, an image rolling out, workers starting): the workflow waits, it is not invalid.
    ``unavailable`` lists each such task, by task name."""

    def __init__(self, name: str, unavailable: Iterable[Unavailable]):
        self.name = name
        self.unavailable = sorted(set(unavailable),
                                  key=lambda u: (u.task, u.pool, u.secret or ""))
        super().__init__("; ".join(str(u) for u in self.unavailable))


def unknown_type_message(type_name: str, pool: str, facts: PoolFacts) -> str:
    """``unknown task type "x" in pool "p"; p serves: a, b (did you mean ...)``."""
    serves = ", ".join(sorted(facts.types)) or "nothing"
    return (f'unknown task type "{type_name}" in pool "{pool}"; {pool} serves: {serves}'
            f"{did_you_mean(type_name, facts.types)}")


def schema_problems(task: str, type_name: str, pool: str, schema: Mapping[str, Any],
                    params: Mapping[str, Any],
                    templated: list[tuple[Any, ...]]) -> list[Problem]:
    """Problems of literal ``params`` of ``task`` against the ``schema`` its ``pool``
    advertises for ``type_name``: unknown keys (when the schema forbids extra ones),
    missing required keys, and values, each at its field (``params.top``). Values under a
    ``templated`` location (pydantic-style ``loc`` tuples) are skipped: they are known only
    once rendered. A schema that is itself invalid is one problem at ``params``."""
    where = f'advertised by pool "{pool}"'
    problems: list[Problem] = []
    properties = schema.get("properties") or {}
    if schema.get("additionalProperties") is False:
        for key in params:
            if key not in properties:
                problems.append(Problem(task, key_path("params", key), (
                    f'unknown parameter for type "{type_name}" {where} (known: '
                    f"{', '.join(sorted(properties))}){did_you_mean(key, properties)}")))
    try:
        validator_class = jsonschema.validators.validator_for(
            schema, default=jsonschema.Draft202012Validator)
        validator_class.check_schema(schema)
        errors = list(validator_class(schema).iter_errors(dict(params)))
    except jsonschema.SchemaError as exc:
        return [*problems, Problem(task, "params", f"the params schema {where} is invalid: "
                                   f"{exc.message}")]
    for error in errors:
        loc = tuple(error.absolute_path)
        if error.validator == "additionalProperties" and not loc:
            continue  # reported above, with the known keys
        if error.validator == "required":
            missing = _missing_keys(error.instance, error.validator_value)
            for key in missing:
                problems.append(Problem(task, field_path((*loc, key), "params"),
                                        f"required parameter is missing ({where})"))
            continue
        if templated and (not loc or any(loc[: len(t)] == t for t in templated)):
            continue
        problems.append(Problem(task, field_path(loc, "params"), f"{error.message} ({where})"))
    return problems


def _missing_keys(instance: Any, required: Any) -> Iterator[str]:
    if isinstance(instance, Mapping) and isinstance(required, list):
        yield from (key for key in required if key not in instance)


def secret_problem(task: str, where: str, secret: str, pool: str) -> Problem:
    """``task`` reads Secret ``secret`` in the expression at ``where`` (``params.token``),
    but its ``pool`` does not mount it."""
    return Problem(task, where, f"reads secret {secret!r}, which pool {pool!r} does not "
                                f"mount (spec.secrets)")
