"""Templates: values whose strings hold ``${{ }}``, split into literal text and CEL bodies,
compiled once into a renderer and rendered against the runtime context."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import cel

from .compiled import Expression, _expression
from .errors import ExpressionError, _Invalid
from .language import CLOSE, OPEN
from .reads import select, union_reads
from .scanner import _BODY_RE
from .values import to_json_value, to_text

_SIMPLE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")

Renderer = Callable[[Any], Any]


def _split(text: str) -> tuple[list[str], list[bool]]:
    """Split a string into literal parts and template bodies.

    Returns ``(parts, is_expr)``, parallel lists. Raises :class:`_Invalid` for an
    unterminated ``${{`` or an empty template.
    """
    parts: list[str] = []
    is_expr: list[bool] = []
    literal: list[str] = []
    i = 0
    while True:
        j = text.find(OPEN, i)
        if j < 0:
            literal.append(text[i:])
            break
        if j > 0 and text[j - 1] == "$":  # "$${{" is an escaped, literal "${{"
            literal.append(text[i : j - 1] + OPEN)
            i = j + len(OPEN)
            continue
        literal.append(text[i:j])
        end = _template_end(text, j + len(OPEN))
        body = text[j + len(OPEN) : end].strip()
        if not body:
            raise _Invalid("empty template '${{ }}'")
        parts.append("".join(literal))
        is_expr.append(False)
        literal = []
        parts.append(body)
        is_expr.append(True)
        i = end + len(CLOSE)
    parts.append("".join(literal))
    is_expr.append(False)
    return parts, is_expr


def _template_end(text: str, start: int) -> int:
    """Index of the ``}}`` closing a template whose body starts at ``start``.

    Braces of CEL map literals nest and string literals are skipped, so
    ``${{ {'a': {'b': '}}'}} }}`` ends at the last ``}}``.
    """
    depth = 0
    k = start
    n = len(text)
    while k < n:
        match = _BODY_RE.match(text, k)
        assert match is not None  # the last alternative matches any character
        chunk = match.group()
        if match.lastgroup == "other" and len(chunk) == 1:
            if chunk == "{":
                depth += 1
            elif chunk == "}":
                if depth == 0:
                    if text.startswith(CLOSE, k):
                        return k
                    raise _Invalid(f"unbalanced '}}' in template at offset {k}")
                depth -= 1
        k = match.end()
    raise _Invalid("unterminated template: '${{' has no closing '}}'")


def key_path(field: str, key: Any) -> str:
    """The path of ``field[key]``: ``params.headers.Authorization``, or ``params["a.b"]``
    when the key is not made of letters, digits, ``_`` and ``-``."""
    key = str(key)
    return f"{field}.{key}" if _SIMPLE_KEY_RE.match(key) else f"{field}[{key!r}]"


def _build(
    value: Any, field: str, exprs: list[Expression], errors: list[ExpressionError]
) -> Renderer | None:
    """A function rendering ``value`` from a CEL environment; None when ``value`` is static."""
    if isinstance(value, str):
        return _build_string(value, field, exprs, errors)
    if isinstance(value, dict):
        items = [(k, v, _build(v, key_path(field, k), exprs, errors)) for k, v in value.items()]
        if all(r is None for _, _, r in items):
            return None

        def render_dict(env: Any) -> dict[Any, Any]:
            return {k: (v if r is None else r(env)) for k, v, r in items}

        return render_dict
    if isinstance(value, list | tuple):
        elements = [(v, _build(v, f"{field}[{i}]", exprs, errors)) for i, v in enumerate(value)]
        if all(r is None for _, r in elements):
            return None

        def render_list(env: Any) -> list[Any]:
            return [v if r is None else r(env) for v, r in elements]

        return render_list
    return None


def _build_string(
    text: str, field: str, exprs: list[Expression], errors: list[ExpressionError]
) -> Renderer | None:
    if OPEN not in text:
        return None
    try:
        parts, is_expr = _split(text)
    except _Invalid as exc:
        errors.append(ExpressionError(field, str(exc)))
        return None
    pieces: list[str | Expression] = []
    failed = False
    for part, expr in zip(parts, is_expr, strict=True):
        if not expr:
            if part:
                pieces.append(part)
            continue
        try:
            expression = _expression(part, field)
        except ExpressionError as exc:
            errors.append(exc)
            failed = True
            continue
        exprs.append(expression)
        pieces.append(expression)
    if failed:
        return None
    templates = [p for p in pieces if isinstance(p, Expression)]
    literal = "".join(p for p in pieces if isinstance(p, str))
    if not templates:  # only escaped "$${{"
        return lambda env: literal
    if len(templates) == 1 and not literal.strip():
        only = templates[0]

        def render_typed(env: Any) -> Any:
            return to_json_value(only.evaluate(env))

        return render_typed
    frozen = tuple(pieces)

    def render_text(env: Any) -> str:
        return "".join(p if p.__class__ is str else to_text(p.evaluate(env)) for p in frozen)

    return render_text


class Template:
    """A value whose strings may hold ``${{ }}`` templates, compiled once, rendered often.

    Attributes: ``field`` (path prefix, e.g. ``params``), ``source`` (the value as
    written), ``expressions`` (every :class:`Expression`, in document order),
    ``references`` (task names read), ``roots`` (top-level variables used), ``inputs``
    (input names selected statically) and ``is_static`` (no template at all).
    """

    __slots__ = (
        "_reads", "_renderer", "expressions", "field", "inputs", "is_static", "references",
        "roots", "source",
    )  # fmt: skip

    def __init__(
        self,
        source: Any,
        field: str,
        renderer: Renderer | None,
        expressions: tuple[Expression, ...],
    ):
        self.source = source
        self.field = field
        self.expressions = expressions
        self.is_static = not expressions
        self._renderer = renderer
        self._reads = union_reads(e._reads for e in expressions)
        self.references = frozenset().union(*(e.references for e in expressions))
        self.roots = frozenset().union(*(e.roots for e in expressions))
        self.inputs = frozenset().union(*(e.inputs for e in expressions))

    def render(self, context: Mapping[str, Any]) -> Any:
        """Render against the runtime context (shape in the package docstring).

        Returns a new structure where templated strings are replaced by their values;
        untemplated parts are the source objects themselves (not copies). A value without
        templates is returned as is, without touching ``context``. Raises
        :class:`ExpressionError` naming the field when an expression fails to evaluate
        (missing key, wrong argument types, division by zero ...).
        """
        if self._renderer is None:
            return self.source
        if not self.expressions:
            return self._renderer(None)
        env: Any = select(context, self._reads)
        if len(self.expressions) > 1:
            # A Context converts the variables once for all expressions instead of per call.
            env = cel.Context(variables=env)
        return self._renderer(env)

    def __repr__(self) -> str:
        return f"Template({self.field}, {len(self.expressions)} expressions)"


def compile_template(value: Any, field: str) -> Template:
    """Compile every ``${{ }}`` template in ``value`` (str, or dicts/lists nesting them).

    ``field`` is the path of ``value`` (``"params"``); leaves are named below it
    (``params.headers.Authorization``, ``params.items[2]``). Raises
    :class:`ExpressionError` for the first bad leaf, with every problem found in
    ``.errors``: syntax errors, unknown variables or functions, ``tasks`` not followed by a
    task name, unknown fields of a task or of ``execution``, unterminated templates.
    Whether referenced tasks and inputs exist is the compiler's concern.
    """
    expressions: list[Expression] = []
    errors: list[ExpressionError] = []
    renderer = _build(value, field, expressions, errors)
    for expression in expressions:
        if not expression.roots:
            # It reads nothing, so it gives the same value (or the same error) on every
            # run: evaluate it now, and a wrong argument is an apply-time problem.
            try:
                expression.evaluate({})
            except ExpressionError as exc:
                errors.append(exc)
    if errors:
        first = errors[0]
        first.errors = tuple(errors)
        raise first
    return Template(value, field, renderer, tuple(expressions))
