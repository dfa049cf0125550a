"""What is wrong with a workflow, and how it is worded: the problem type, the two errors
that carry problems, and the message builders (pydantic errors, field paths, hints).

The wording is user-facing (it reaches ``kubectl describe`` through status conditions), so
it lives in one place: a message changes here, and the compiler tests pin it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ..expressions import key_path

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


def problem_order(problem: Problem) -> tuple[Any, ...]:
    """Sort key: workflow-level problems first, then by task, field and message."""
    return (problem.task is not None, problem.task or "", problem.field, problem.message)


class WorkflowInvalid(ValueError):
    """A workflow that cannot run; ``problems`` lists every reason, sorted.

    Sorted by task (workflow-level problems first), then field, then message, so the text
    is stable and a status condition does not flap between equivalent messages.
    """

    def __init__(self, name: str, problems: Iterable[Problem]):
        self.name = name
        self.problems: list[Problem] = sorted(set(problems), key=problem_order)
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
        self.problems: list[Problem] = sorted(problems, key=problem_order)
        super().__init__("; ".join(str(problem) for problem in self.problems))


def with_yaml_hint(field_path: str, message: str) -> str:
    """``message``, plus :data:`YAML_BOOLEAN_HINT` when ``field_path`` has a key ``true`` or
    ``false`` (what YAML 1.1 makes of an unquoted ``y``/``n``/``on``/``off``)."""
    if _YAML_BOOLEAN_KEY.search(field_path):
        return message + YAML_BOOLEAN_HINT
    return message


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``'; did you mean "x"?'`` for the closest of ``known`` (difflib), else ``''``."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f'; did you mean "{close[0]}"?' if close else ""


def field_path(loc: Iterable[Any], base: str = "") -> str:
    """A pydantic ``loc`` as a manifest path: ``params.headers.X-A``, ``tasks[2].retry``."""
    text = base
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text = key_path(text, part) if text else str(part)
    return text


def error_message(error: Mapping[str, Any], noun: str = "field") -> str:
    """A pydantic error message without pydantic's prefixes or a repeated field name."""
    kind = error["type"]
    loc = tuple(error["loc"])
    if kind == "missing":
        return f"required {noun} is missing"
    if kind == "extra_forbidden":
        return f"unknown {noun}"
    if kind == "too_short" and loc == ("tasks",):
        return "a workflow needs at least one task"
    if kind == "too_long" and loc == ("tasks",):
        context = error.get("ctx") or {}
        return (f"a workflow has at most {context.get('max_length')} tasks; this one has "
                f"{context.get('actual_length')} (split the work into several workflows)")
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


def spec_problems(exc: ValidationError, raw: Any) -> list[Problem]:
    """Pydantic errors of a whole spec as problems, naming tasks by name where possible.

    ``raw`` is the wire form that failed validation; a task's name is read from it when
    the error lies inside a task that has a usable name.
    """
    problems = []
    for error in exc.errors(include_url=False):
        loc = tuple(error["loc"])
        task = None
        if len(loc) > 2 and loc[0] == "tasks" and isinstance(loc[1], int):
            task = _raw_task_name(raw, loc[1])
            if task is not None:
                loc = loc[2:]
        problems.append(Problem(task, field_path(loc), error_message(error)))
    return problems


def _raw_task_name(raw: Any, i: int) -> str | None:
    try:
        name = raw["tasks"][i]["name"]
    except (KeyError, IndexError, TypeError):
        return None
    return name if isinstance(name, str) and name else None
