"""JSON type names and the input type check, as a table (JSON Schema's rules)."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_engine.inputtypes import INPUT_TYPES, json_type, type_mismatch


@pytest.mark.parametrize(("value", "name"), [
    (None, "null"), (True, "boolean"), (0, "integer"), (1.5, "number"), ("", "string"),
    ({}, "object"), ([], "array"),
])
def test_json_type(value: Any, name: str) -> None:
    assert json_type(value) == name


@pytest.mark.parametrize(("value", "expected", "problem"), [
    (1, None, None),
    ("x", None, None),
    (1, "number", None),            # an integer is a number
    (2.0, "integer", None),         # a zero fraction is an integer
    (2.5, "integer", "expected integer, got number 2.5"),
    (True, "integer", "expected integer, got boolean True"),   # a bool is not a number
    (False, "number", "expected number, got boolean False"),
    ("1", "integer", "expected integer, got string '1'"),
    ([], "object", "expected object, got array"),
    ({}, "array", "expected array, got object"),
    (None, "string", "expected string, got null"),
    ("yes", "boolean", "expected boolean, got string 'yes'"),
])
def test_type_mismatch(value: Any, expected: Any, problem: str | None) -> None:
    assert type_mismatch(value, expected) == problem


def test_every_type_accepts_its_own_kind() -> None:
    samples = {"string": "s", "integer": 1, "number": 1.5, "boolean": True, "object": {},
               "array": []}
    assert set(samples) == set(INPUT_TYPES)
    for name, value in samples.items():
        assert type_mismatch(value, name) is None
