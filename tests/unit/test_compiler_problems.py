"""The compiler's problem wording, as tables: field paths, pydantic messages, hints."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_engine.compiler import YAML_BOOLEAN_HINT, InvalidInputs, Problem, WorkflowInvalid
from conveyor_engine.compiler.problems import (
    did_you_mean,
    error_message,
    field_path,
    with_yaml_hint,
)


@pytest.mark.parametrize(("problem", "text"), [
    (Problem(None, "", "bad"), "bad"),
    (Problem(None, "inputs[1].name", "bad"), "inputs[1].name: bad"),
    (Problem("d", "params.url", "bad"), 'task "d": params.url: bad'),
    (Problem("d", "", "bad"), 'task "d": bad'),
])
def test_problem_text(problem: Problem, text: str) -> None:
    assert str(problem) == text


def test_workflow_invalid_sorts_and_deduplicates() -> None:
    error = WorkflowInvalid("w", [Problem("b", "x", "m"), Problem(None, "z", "m"),
                                  Problem("a", "y", "m"), Problem("b", "x", "m")])
    assert [str(p) for p in error.problems] == ['z: m', 'task "a": y: m', 'task "b": x: m']
    assert str(error).splitlines()[0] == 'workflow "w" is invalid (3 problems):'
    assert str(InvalidInputs([Problem(None, "inputs.b", "m"), Problem(None, "inputs.a", "m")])
               ) == "inputs.a: m; inputs.b: m"


@pytest.mark.parametrize(("loc", "base", "path"), [
    ((), "", ""),
    (("tasks", 2, "retry", "limit"), "", "tasks[2].retry.limit"),
    (("headers", "X-A"), "params", "params.headers.X-A"),
    (("a.b",), "params", "params['a.b']"),
    ((0,), "params", "params[0]"),
])
def test_field_path(loc: tuple, base: str, path: str) -> None:
    assert field_path(loc, base) == path


@pytest.mark.parametrize(("error", "noun", "message"), [
    ({"type": "missing", "loc": ("url",), "msg": "Field required"}, "parameter",
     "required parameter is missing"),
    ({"type": "extra_forbidden", "loc": ("x",), "msg": "Extra inputs"}, "field",
     "unknown field"),
    ({"type": "too_short", "loc": ("tasks",), "msg": "List should have at least 1 item"},
     "field", "a workflow needs at least one task"),
    ({"type": "value_error", "loc": ("retry", "backoff"),
      "msg": "Value error, backoff: not a duration"}, "field", "not a duration"),
    ({"type": "value_error", "loc": ("retry", "maxBackoff"),
      "msg": "Value error, max_backoff: not a duration"}, "field", "not a duration"),
    ({"type": "assertion_error", "loc": ("x",), "msg": "Assertion failed, nope"}, "field",
     "nope"),
])
def test_error_message(error: dict[str, Any], noun: str, message: str) -> None:
    assert error_message(error, noun) == message


@pytest.mark.parametrize(("path", "hinted"), [
    ("params.true", True),
    ("params.false.x", True),
    ("params.headers.true[0]", True),
    ("params.truthy", False),
    ("when", False),
])
def test_yaml_boolean_hint(path: str, hinted: bool) -> None:
    assert with_yaml_hint(path, "m") == ("m" + YAML_BOOLEAN_HINT if hinted else "m")


@pytest.mark.parametrize(("name", "known", "hint"), [
    ("fetc", ["fetch", "store"], '; did you mean "fetch"?'),
    ("zzz", ["fetch", "store"], ""),
    ("a", [], ""),
])
def test_did_you_mean(name: str, known: list[str], hint: str) -> None:
    assert did_you_mean(name, known) == hint
