"""Compiled expressions: one CEL expression checked against the language and compiled once
(cached on its text), evaluated with errors that name the field and explain the failure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel

from .errors import ExpressionError, _Invalid
from .functions import EXTENSIONS, NAMESPACES, namespaced_calls, used_functions
from .language import FUNCTIONS, MAX_EXPRESSION_CHARS, ROOTS
from .reads import Reads, _reads_of
from .scanner import _first_sentence, _scan, _syntax_message

_UNDEFINED_RE = re.compile(r"Undefined variable or function: '([^']*)'")
#: How the CEL package reports an exception of a Python extension function.
_CALLBACK_RE = re.compile(r"Function '([^']*)' error: Python function call failed: "
                          r"(\w+): (.*)", re.S)


@dataclass(frozen=True, slots=True)
class _Analysis:
    program: Any
    roots: frozenset[str]
    tasks: frozenset[str]
    inputs: frozenset[str]
    reads: Reads
    functions: tuple[tuple[str, Any], ...]


@lru_cache(maxsize=8192)
def _analyse(text: str) -> _Analysis:
    """Compile and check one expression; cached on the text (workers render hot templates).

    Raises :class:`_Invalid` with every problem found, joined by ``"; "``.
    """
    if len(text) > MAX_EXPRESSION_CHARS:
        raise _Invalid(f"expression is longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        program = cel.compile(text)
    except Exception as exc:  # ValueError for syntax errors; anything else is as fatal
        raise _Invalid(f"{text!r} {_syntax_message(exc)}") from None
    scan = _scan(text)
    # The CEL runtime is the authority on which names are variables; the scanner only says
    # which of them are macro-bound (the runtime lists those too).
    # A namespace of extension functions (``math`` in ``math.greatest(...)``) looks like a
    # variable to the runtime; it is one only where it is not followed by a call.
    namespaces = {name.partition(".")[0] for name in namespaced_calls(text)} & NAMESPACES
    roots = frozenset(
        name for name in program.variables()
        if (name in scan.free or name not in scan.bound) and name not in namespaces
    )
    problems = []
    for name in sorted(roots - ROOTS):
        hint = ""
        dashed = re.search(rf"([A-Za-z0-9_]+)-{re.escape(name)}\b", text)
        if dashed:
            hint = f" (a name containing '-' is written in brackets: ['{dashed.group(1)}-{name}'])"
        problems.append(
            f"unknown variable {name!r}{hint}; expressions may use inputs, tasks, task, "
            "execution and secrets"
        )
    problems.extend(scan.problems)
    functions, unknown = used_functions(text, program.functions(), FUNCTIONS)
    problems.extend(unknown)
    if problems:
        raise _Invalid(f"in {text!r}: " + "; ".join(problems))
    return _Analysis(
        program=program,
        roots=roots,
        tasks=scan.tasks if "tasks" in roots else frozenset(),
        inputs=scan.inputs if "inputs" in roots else frozenset(),
        reads=_reads_of(roots, scan.paths),
        functions=tuple(sorted(functions.items())),
    )


@dataclass(frozen=True, slots=True, eq=False)
class Expression:
    """One CEL expression of a template or condition, checked and compiled.

    ``field``: where it was written (``params.url``); ``text``: the CEL source;
    ``references``: task names it reads (``tasks.NAME``); ``roots``: top-level variables
    it uses; ``inputs``: input names it selects statically (``inputs.NAME``).
    """

    field: str
    text: str
    references: frozenset[str]
    roots: frozenset[str]
    inputs: frozenset[str]
    _reads: Reads
    _program: Any
    _functions: tuple[tuple[str, Any], ...] = ()

    @property
    def reads(self) -> Reads:
        """What it reads of the context, as a tree of keys per root variable
        (:data:`~.reads.Reads`): ``reads.get("secrets")`` maps each Secret read by name to
        its keys (None: read whole, by a name known only at run time)."""
        return self._reads

    def evaluate(self, env: Any) -> Any:
        """Evaluate with ``env`` as the variables (a dict or a ``cel.Context``).

        Returns the raw CEL result (see :func:`to_json_value`); raises
        :class:`ExpressionError` naming the field and what went wrong.
        """
        if self._functions:
            # Extension functions are Python callbacks registered on a Context; only those
            # this expression calls, so the others cost nothing.
            if not isinstance(env, cel.Context):
                env = cel.Context(variables=env)
            for name, function in self._functions:
                env.add_function(name, function)
        try:
            return self._program.execute(env)
        except Exception as exc:
            raise ExpressionError(
                self.field, f"cannot evaluate {self.text!r}: {self._explain(exc, env)}"
            ) from exc

    def _explain(self, exc: Exception, env: Any) -> str:
        variables = env.variables if isinstance(env, cel.Context) else env
        if isinstance(exc, KeyError) and exc.args:
            key = exc.args[0]
            tasks = variables.get("tasks") or {}
            inputs = variables.get("inputs") or {}
            if key in self.references and key not in tasks:
                return f"task {key!r} has no result in this execution"
            if key in self.inputs and key not in inputs:
                return f"input {key!r} was not given"
            return f"no such key: {key!r} (test for it first with has(...) or 'key' in map)"
        callback = _CALLBACK_RE.search(str(exc))
        if callback:
            # An extension function refused its arguments: say so in CEL's words instead of
            # Python's ("'<' not supported between instances of 'str' and 'int'").
            name, kind, message = callback.groups()
            if kind == "TypeError":
                return f"{name}() does not accept arguments of these types"
            return f"{name}(): {_first_sentence(message.strip())}"
        match = _UNDEFINED_RE.search(str(exc))
        if match:
            name = match.group(1)
            if name in FUNCTIONS or name in EXTENSIONS:
                return f"{name}() does not accept arguments of these types"
            if name in ROOTS:
                return f"variable {name!r} is not available here"
            return f"unknown function or variable {name!r}"
        return _first_sentence(str(exc)) or type(exc).__name__


def _expression(text: str, field: str) -> Expression:
    try:
        analysis = _analyse(text)
    except _Invalid as exc:
        raise ExpressionError(field, str(exc)) from None
    return Expression(
        field=field,
        text=text,
        references=analysis.tasks,
        roots=analysis.roots,
        inputs=analysis.inputs,
        _reads=analysis.reads,
        _program=analysis.program,
        _functions=analysis.functions,
    )
