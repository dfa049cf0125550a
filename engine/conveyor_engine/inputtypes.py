"""Input types: the JSON types a workflow input may declare, and the check of a value.

The names are JSON Schema's type names (JSON Schema Validation, section 6.1.1), which is
also what a CRD's OpenAPI schema uses: ``string``, ``integer``, ``number``, ``boolean``,
``object``, ``array``. An input without a type accepts any JSON value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

InputType = Literal["string", "integer", "number", "boolean", "object", "array"]
INPUT_TYPES: tuple[str, ...] = ("string", "integer", "number", "boolean", "object", "array")


def json_type(value: Any) -> str:
    """The JSON type name of a decoded JSON value (``null`` for None)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def type_mismatch(value: Any, expected: InputType | None) -> str | None:
    """Why ``value`` is not of the JSON type ``expected``, or None when it is (or untyped).

    As in JSON Schema, an ``integer`` is also a ``number``, a number with a zero fraction
    (``3.0``) is an ``integer``, and a boolean is neither.
    """
    if expected is None:
        return None
    actual = json_type(value)
    if actual == expected:
        return None
    if expected == "number" and actual == "integer":
        return None
    if expected == "integer" and actual == "number" and float(value).is_integer():
        return None
    shown = repr(value) if actual in ("string", "integer", "number", "boolean") else actual
    return f"expected {expected}, got {actual}" + (f" {shown}" if shown != actual else "")
