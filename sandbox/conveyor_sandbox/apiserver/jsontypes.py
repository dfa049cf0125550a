"""The JSON type of a decoded value, named as OpenAPI/JSON Schema name types.

Kubernetes validates custom resources against OpenAPI v3 structural schemas, whose ``type``
keyword takes the JSON Schema names (JSON Schema Validation, draft 2020-12, section 6.1.1):
``null``, ``boolean``, ``object``, ``array``, ``number``, ``string`` and ``integer``. The API
server's errors quote the same names (``must be of type integer: "string"``).

The sandbox's API server keeps its own copy of this rule rather than importing the engine's
(``conveyor_engine.inputtypes``): the emulator imports no Conveyor package, so it can be
understood, tested and changed on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def json_type(value: Any) -> str:
    """The JSON Schema type name of ``value`` as decoded from JSON (``null`` for None).

    ``bool`` is checked before ``int`` (it is a subclass of it in Python, never in JSON); an
    ``int`` is ``integer`` and a ``float`` is ``number``, even ``3.0``, as the API server's
    decoder sees it. Values JSON cannot hold are named by their Python type, so an error
    message still says what was found.
    """
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
