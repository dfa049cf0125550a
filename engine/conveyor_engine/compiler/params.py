"""A task's type and literal params checked at compile time (pure).

Built-in types (every worker has them) are checked against their local ``Params`` model;
any other type, when facts about the task's pool are known, against the JSON Schema the
pool's workers advertise (:mod:`.pools`), and a type no worker of an unsettled pool has
yet is *unavailable* (the Workflow waits) rather than a problem. Without pool facts (the
engine alone, tests, benchmarks) every type is checked against this process's registry.
Templated values (``${{ }}``) are skipped: they are only known once rendered.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ValidationError

from .. import tasktypes
from ..expressions import OPEN, key_path
from ..model import TaskSpec
from .pools import (
    BUILTIN_DISTRIBUTION,
    PoolFacts,
    Unavailable,
    schema_problems,
    unknown_type_message,
)
from .problems import Problem, did_you_mean, error_message, field_path, with_yaml_hint


def _problem(task: str, path: str, message: str) -> Problem:
    return Problem(task, path, with_yaml_hint(path, message))


def param_problems(task: TaskSpec, pool: str, facts: PoolFacts | None,
                   ) -> tuple[list[Problem], list[Unavailable]]:
    """Problems of ``task``'s type and literal params, and the type as unavailable when no
    worker of an unsettled ``pool`` has it yet (``facts``: what the pool advertises, None
    when unknown)."""
    if facts is not None and not builtin(task.type):
        return advertised_problems(task, pool, facts)
    try:
        task_type = tasktypes.get(task.type)
    except KeyError:
        known = ", ".join(tasktypes.known())
        return [_problem(task.name, "type",
                         f'unknown task type "{task.type}" (known types: {known})')], []
    problems = []
    model: type[BaseModel] = task_type.Params
    if model.model_config.get("extra") != "allow":
        keys = param_keys(model)
        for key in task.params:
            if key not in keys:
                problems.append(_problem(
                    task.name, key_path("params", key),
                    f'unknown parameter for type "{task.type}" (known: '
                    f"{', '.join(sorted(keys))}){did_you_mean(key, keys)}"))
    templated = list(templated_paths(task.params, ()))
    try:
        model.model_validate(task.params)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            loc = tuple(error["loc"])
            if error["type"] == "extra_forbidden":
                continue  # reported above, with the known keys
            if templated and (not loc or any(loc[: len(t)] == t for t in templated)):
                continue  # depends on a value only known once templates are rendered
            problems.append(_problem(task.name, field_path(loc, "params"),
                                     error_message(error, "parameter")))
    except Exception as exc:  # a type's own validator misbehaving must not hide others
        problems.append(_problem(task.name, "params", f"could not be validated: {exc}"))
    return problems, []


def advertised_problems(task: TaskSpec, pool: str, facts: PoolFacts,
                        ) -> tuple[list[Problem], list[Unavailable]]:
    """A type that is not built in, against what ``pool`` advertises: unknown on a
    settled pool is a problem, on an unsettled one unavailable (the Workflow waits)."""
    schema = facts.types.get(task.type)
    if schema is None:
        if facts.settled:
            return [_problem(task.name, "type",
                             unknown_type_message(task.type, pool, facts))], []
        return [], [Unavailable(task.name, task.type, pool)]
    templated = list(templated_paths(task.params, ()))
    return schema_problems(task.name, task.type, pool, schema, task.params, templated), []


def builtin(name: str) -> bool:
    """Whether ``name`` is a built-in type (every worker has it, so its local model is the
    one all pools run)."""
    registry = tasktypes.registry()
    return (name in registry
            and registry.entry(name).provider.distribution == BUILTIN_DISTRIBUTION)


def param_keys(model: type[BaseModel]) -> set[str]:
    """Param names as written in manifests: the alias of each field (camelCase)."""
    return {info.alias or name for name, info in model.model_fields.items()}


def templated_paths(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[Any, ...]]:
    """Locations (pydantic ``loc`` tuples) of strings holding templates."""
    if isinstance(value, str):
        if OPEN in value:
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from templated_paths(item, (*path, key))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from templated_paths(item, (*path, i))
