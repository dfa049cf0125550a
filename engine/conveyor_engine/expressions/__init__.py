"""Sandboxed expressions: CEL inside ``${{ }}`` templates, and bare CEL conditions.

The language is CEL (https://github.com/google/cel-spec), evaluated by the Rust
implementation behind the PyPI package ``common-expression-language``: it has no I/O, no
imports and no unbounded loops, so a manifest can never run code on a worker. Only the core
CEL functions are available (see :data:`FUNCTIONS`); nothing from Python is exposed.

Templates: any string in task ``params`` may hold ``${{ <CEL> }}``. A string that is exactly
one template (whitespace around it allowed) renders to the expression's typed value; any
other string renders to text, each template replaced by its value as text (strings as-is,
numbers, booleans and null as in JSON, maps and lists as compact JSON). ``$${{`` writes a
literal ``${{``. Dict keys are never templated.

Every expression sees four variables (the runtime context)::

    {"inputs": {name: value},
     "tasks": {name: {"outputs": {...}, "phase": "Succeeded" | "Skipped"}},
     "execution": {"id": str, "workflow": str},
     "task": {"name": str, "attempt": int}}   # the task being run, attempt 1-based

plus the variables bound by the comprehension macros ``all``, ``exists``, ``exists_one``,
``map`` and ``filter``. Tasks are referred to by name: ``tasks.fetch`` or, for names with
``-``, ``tasks['fetch-user']``; this is what lets the compiler check that a task only reads
outputs of tasks upstream of it.

Values leave CEL as JSON-compatible Python values; CEL timestamps, durations and bytes use
the proto3 JSON mapping (RFC 3339 text, ``"1.5s"``, base64), so rendered params can be
stored as JSON.
"""

from .compiled import Expression
from .conditions import Condition, compile_condition
from .errors import ExpressionError
from .language import (
    CLOSE,
    EXECUTION_FIELDS,
    FUNCTIONS,
    MACROS,
    MAX_EXPRESSION_CHARS,
    OPEN,
    ROOTS,
    SELF_FIELDS,
    TASK_FIELDS,
)
from .reads import Reads, select, union_reads
from .scanner import Token
from .templates import Renderer, Template, compile_template, key_path
from .values import to_json_value, to_text

__all__ = [
    "CLOSE",
    "EXECUTION_FIELDS",
    "FUNCTIONS",
    "MACROS",
    "MAX_EXPRESSION_CHARS",
    "OPEN",
    "ROOTS",
    "SELF_FIELDS",
    "TASK_FIELDS",
    "Condition",
    "Expression",
    "ExpressionError",
    "Reads",
    "Renderer",
    "Template",
    "Token",
    "compile_condition",
    "compile_template",
    "key_path",
    "select",
    "to_json_value",
    "to_text",
    "union_reads",
]
