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

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import cel

#: The top-level variables of every expression.
ROOTS = frozenset({"inputs", "tasks", "execution", "task"})
#: What ``tasks.NAME`` holds.
TASK_FIELDS = frozenset({"outputs", "phase"})
#: What ``execution`` holds.
EXECUTION_FIELDS = frozenset({"id", "workflow"})
#: What ``task`` (the task being run) holds.
SELF_FIELDS = frozenset({"name", "attempt"})
#: Comprehension macros of the CEL spec (``e.map(x, ...)`` binds ``x``).
MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
#: Named functions the CEL runtime provides (CEL spec "standard definitions", as implemented
#: by cel-rust). Checked before a workflow is accepted so a typo fails at apply time, not
#: in the middle of an execution. Operators (``_+_``, ``@in`` ...) are not listed.
FUNCTIONS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bytes", "timestamp", "duration", "dyn", "type",
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear",
        "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip
#: Longest accepted expression. CEL has no loops, but comprehensions nest, so evaluation
#: cost grows with text; a bound keeps one manifest from monopolising a worker.
MAX_EXPRESSION_CHARS = 4096

OPEN = "${{"
CLOSE = "}}"
_ESCAPED_OPEN = "$" + OPEN


class ExpressionError(ValueError):
    """An expression that does not parse, refers to what it may not, or fails to evaluate.

    ``field`` is the dotted path of the string holding it (``params.headers.Authorization``,
    ``when``); ``message`` says what is wrong; ``str()`` is ``"<field>: <message>"``.
    ``errors`` holds every problem found by the same compile call (this one first), so a
    caller can report them all at once.
    """

    def __init__(self, field: str, message: str, *, others: tuple[ExpressionError, ...] = ()):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.errors: tuple[ExpressionError, ...] = (self, *others)


class _Invalid(Exception):
    """A problem with an expression's text, before a field is known."""


# ------------------------------------------------------------------ lexical analysis

# CEL lexical grammar (cel-spec/doc/langdef.md, "Syntax"): raw strings take no escapes,
# others do; triple quotes may span lines; ``b`` prefixes bytes.
_RAW = r"(?:[rR][bB]?|[bB][rR])(?:\"\"\"[\s\S]*?\"\"\"|'''[\s\S]*?'''|\"[^\"\n]*\"|'[^'\n]*')"
_COOKED = (
    r"[bB]?(?:\"\"\"(?:\\[\s\S]|[^\\])*?\"\"\"|'''(?:\\[\s\S]|[^\\])*?'''"
    r"|\"(?:\\.|[^\"\\\n])*\"|'(?:\\.|[^'\\\n])*')"
)
_STRING = f"{_RAW}|{_COOKED}"
_NUMBER = r"0[xX][0-9a-fA-F]+[uU]?|\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+[uU]?"
_TOKEN_RE = re.compile(
    rf"(?P<ws>\s+|//[^\n]*)|(?P<str>{_STRING})|(?P<num>{_NUMBER})"
    r"|(?P<ident>[A-Za-z_][A-Za-z0-9_]*)|(?P<punct>.)",
    re.DOTALL,
)
# Template bodies are scanned with strings skipped, so "}}" inside a literal doesn't end them.
_BODY_RE = re.compile(rf"(?P<str>{_STRING})|(?P<other>[^'\"{{}}]+|.)", re.DOTALL)
_KEYWORDS = frozenset({"true", "false", "null", "in"})
_SYNTAX_RE = re.compile(r"ERROR: <input>:(\d+):(\d+): (.*)")
_UNDEFINED_RE = re.compile(r"Undefined variable or function: '([^']*)'")
_SIMPLE_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+$")

Token = tuple[str, str]


def _tokenize(text: str) -> list[Token]:
    """CEL tokens as ``(kind, text)``, whitespace and comments dropped."""
    tokens = []
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind != "ws":
            tokens.append((kind, match.group()))
    return tokens


def _string_value(literal: str) -> str | None:
    """The value of a CEL string literal token; None for bytes literals."""
    if literal[0] in "bB" or literal[:2].lower() in ("rb", "br"):
        return None
    try:
        value = cel.compile(literal).execute()
    except Exception:  # the literal came from a parsed expression; be defensive anyway
        return None
    return value if isinstance(value, str) else None


def _selector(tokens: list[Token], j: int) -> tuple[str | None, int]:
    """A static selector at ``tokens[j]`` (``.name`` or ``['name']``) and the index after it.

    Returns ``(None, j)`` when the next access is dynamic, absent or a method call.
    """
    n = len(tokens)
    if j + 1 < n and tokens[j] == ("punct", ".") and tokens[j + 1][0] == "ident":
        if j + 2 < n and tokens[j + 2] == ("punct", "("):
            return None, j
        return tokens[j + 1][1], j + 2
    if (
        j + 2 < n
        and tokens[j] == ("punct", "[")
        and tokens[j + 1][0] == "str"
        and tokens[j + 2] == ("punct", "]")
    ):
        value = _string_value(tokens[j + 1][1])
        if value is not None:
            return value, j + 3
    return None, j


#: How deep a static selection path (``tasks.a.outputs.body.id``) is followed.
_MAX_PATH = 6


@dataclass(frozen=True, slots=True)
class _Scan:
    free: frozenset[str]
    bound: frozenset[str]
    tasks: frozenset[str]
    inputs: frozenset[str]
    #: Every use of a free variable as its static selection path, e.g. ("tasks", "a").
    paths: tuple[tuple[str, ...], ...]
    problems: tuple[str, ...]


def _scan(text: str) -> _Scan:
    """Find free identifiers and the tasks, inputs and execution fields they select.

    A small scanner over CEL tokens rather than the AST, which the ``cel`` package does not
    expose: identifiers after ``.`` are selections, identifiers before ``(`` are calls, and
    the first argument of a macro call is a variable bound until its closing parenthesis.
    """
    tokens = _tokenize(text)
    n = len(tokens)
    free: set[str] = set()
    bound: set[str] = set()
    tasks: set[str] = set()
    inputs: set[str] = set()
    paths: list[tuple[str, ...]] = []
    problems: list[str] = []
    scopes: list[str | None] = []
    binders: set[int] = set()
    for i, (kind, tok) in enumerate(tokens):
        if kind == "punct":
            if tok in "([{":
                name = None
                if (
                    tok == "("
                    and i >= 2
                    and tokens[i - 1][0] == "ident"
                    and tokens[i - 1][1] in MACROS
                    and tokens[i - 2] == ("punct", ".")
                    and i + 2 < n
                    and tokens[i + 1][0] == "ident"
                    and tokens[i + 2] == ("punct", ",")
                ):
                    name = tokens[i + 1][1]
                    binders.add(i + 1)
                scopes.append(name)
            elif tok in ")]}" and scopes:
                scopes.pop()
            continue
        if kind != "ident" or i in binders or tok in _KEYWORDS:
            continue
        if i > 0 and tokens[i - 1] == ("punct", "."):
            continue  # a field selection or a method name
        if i + 1 < n and tokens[i + 1] == ("punct", "("):
            continue  # a global function or macro (has, size, int ...)
        if tok in scopes:
            bound.add(tok)
            continue
        free.add(tok)
        path = [tok]
        after = i + 1
        while len(path) < _MAX_PATH:
            step, after = _selector(tokens, after)
            if step is None:
                break
            path.append(step)
        paths.append(tuple(path))
        name = path[1] if len(path) > 1 else None
        if tok == "tasks":
            if name is None:
                problems.append("refer to a task by name, as tasks.NAME or tasks['NAME']")
                continue
            tasks.add(name)
            field = path[2] if len(path) > 2 else None
            if field is not None and field not in TASK_FIELDS:
                problems.append(
                    f"task {name!r} has no field {field!r}; a task has 'outputs' and 'phase'"
                )
        elif tok == "inputs" and name is not None:
            inputs.add(name)
        elif tok == "execution" and name is not None and name not in EXECUTION_FIELDS:
            problems.append(f"execution has no field {name!r}; it has 'id' and 'workflow'")
        elif tok == "task" and name is not None and name not in SELF_FIELDS:
            problems.append(f"task has no field {name!r}; it has 'name' and 'attempt'")
    return _Scan(
        frozenset(free),
        frozenset(bound),
        frozenset(tasks),
        frozenset(inputs),
        tuple(paths),
        tuple(problems),
    )


def _syntax_message(exc: Exception) -> str:
    match = _SYNTAX_RE.search(str(exc))
    if match is None:
        return f"does not parse: {_first_sentence(str(exc))}"
    line, column, detail = match.groups()
    where = f"column {column}" if line == "1" else f"line {line}, column {column}"
    return f"does not parse at {where}: {detail.strip()}"


def _first_sentence(message: str) -> str:
    lines = message.strip().splitlines()
    line = lines[0] if lines else message
    cut = line.find(". ")
    return (line[:cut] if cut > 0 else line).rstrip(".:")


# ------------------------------------------------------------------ what expressions read

#: What some expressions read of the context: for each root variable, a tree of the keys
#: selected by name, where ``None`` stands for "the whole value".
Reads = dict[str, Any]


def _reads_of(roots: frozenset[str], paths: tuple[tuple[str, ...], ...]) -> Reads:
    reads: Reads = {}
    for path in paths:
        if path[0] in roots:
            reads = _union(reads, _tree(path))
    for root in roots:  # a root the scanner did not see (unexpected) is read whole
        reads.setdefault(root, None)
    return reads


def _tree(path: tuple[str, ...]) -> Reads:
    tree: Any = None
    for key in reversed(path):
        tree = {key: tree}
    return tree


def _union(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, sub in b.items():
        merged[key] = _union(merged[key], sub) if key in merged else sub
    return merged


def union_reads(reads: Any) -> Reads:
    """The union of several expressions' :data:`Reads`."""
    merged: Reads = {}
    for one in reads:
        merged = _union(merged, one)
    return merged


def _prune(value: Any, tree: Any) -> Any:
    if tree is None or not isinstance(value, Mapping):
        return value
    return {key: _prune(value[key], sub) for key, sub in tree.items() if key in value}


def select(context: Mapping[str, Any], reads: Reads) -> dict[str, Any]:
    """The part of ``context`` that expressions with these ``reads`` can observe.

    The CEL runtime converts every value it is given on each call, so handing it only the
    selected keys keeps a render's cost independent of the size of outputs it does not
    read (a 1 MiB response body next to the one field used). Keys selected but absent stay
    absent, so ``has()`` and missing-key errors behave as on the full context.
    """
    return {root: _prune(context[root], tree) for root, tree in reads.items() if root in context}


# ------------------------------------------------------------------ compiled expressions


@dataclass(frozen=True, slots=True)
class _Analysis:
    program: Any
    roots: frozenset[str]
    tasks: frozenset[str]
    inputs: frozenset[str]
    reads: Reads


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
    roots = frozenset(
        name for name in program.variables() if name in scan.free or name not in scan.bound
    )
    problems = []
    for name in sorted(roots - ROOTS):
        hint = ""
        dashed = re.search(rf"([A-Za-z0-9_]+)-{re.escape(name)}\b", text)
        if dashed:
            hint = f" (a name containing '-' is written in brackets: ['{dashed.group(1)}-{name}'])"
        problems.append(
            f"unknown variable {name!r}{hint}; expressions may use inputs, tasks and execution"
        )
    problems.extend(scan.problems)
    for name in program.functions():
        if re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name) and name not in FUNCTIONS:
            problems.append(f"unknown function {name!r}")
    if problems:
        raise _Invalid(f"in {text!r}: " + "; ".join(problems))
    return _Analysis(
        program=program,
        roots=roots,
        tasks=scan.tasks if "tasks" in roots else frozenset(),
        inputs=scan.inputs if "inputs" in roots else frozenset(),
        reads=_reads_of(roots, scan.paths),
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

    def evaluate(self, env: Any) -> Any:
        """Evaluate with ``env`` as the variables (a dict or a ``cel.Context``).

        Returns the raw CEL result (see :func:`to_json_value`); raises
        :class:`ExpressionError` naming the field and what went wrong.
        """
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
        match = _UNDEFINED_RE.search(str(exc))
        if match:
            name = match.group(1)
            if name in FUNCTIONS:
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
    )


# ------------------------------------------------------------------ values out of CEL

_SCALARS = (str, int, float, bool, type(None))


def to_json_value(value: Any) -> Any:
    """A CEL result as a JSON-compatible value.

    Timestamps become RFC 3339 text with ``Z``, durations ``"<seconds>s"`` and bytes base64
    (the proto3 JSON mapping, which CEL's types come from); map keys become strings.
    """
    cls = value.__class__
    if cls in _SCALARS:
        return value
    if cls is dict:
        return {
            (k if k.__class__ is str else to_text(k)): to_json_value(v) for k, v in value.items()
        }
    if cls in (list, tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, timedelta):
        return _duration_text(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, cel.OptionalValue):
        return to_json_value(value.value()) if value.has_value() else None
    if isinstance(value, _SCALARS):  # subclasses (IntEnum, str subclasses)
        return value
    return str(value)


def _duration_text(value: timedelta) -> str:
    if value < timedelta(0):
        return "-" + _duration_text(-value)
    seconds = value.days * 86400 + value.seconds
    if value.microseconds:
        return f"{seconds}.{value.microseconds:06d}".rstrip("0") + "s"
    return f"{seconds}s"


def to_text(value: Any) -> str:
    """A CEL result as template text: strings as-is, everything else as compact JSON."""
    cls = value.__class__
    if cls is str:
        return value
    if cls is bool:
        return "true" if value else "false"
    if value is None:
        return "null"
    if cls is int:
        return str(value)
    value = to_json_value(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


_CEL_TYPE_NAMES = {
    bool: "bool", int: "int", float: "double", str: "string", dict: "map", list: "list",
    type(None): "null", bytes: "bytes", datetime: "timestamp", timedelta: "duration",
}  # fmt: skip


def _type_name(value: Any) -> str:
    return _CEL_TYPE_NAMES.get(type(value), type(value).__name__)


# ------------------------------------------------------------------ templates

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
        """Render against the runtime context (shape in the module docstring).

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
    if errors:
        first = errors[0]
        first.errors = tuple(errors)
        raise first
    return Template(value, field, renderer, tuple(expressions))


class Condition:
    """A compiled bare CEL expression that decides something (a task's ``when``).

    Attributes as on :class:`Template`: ``field``, ``source``, ``expression``,
    ``references``, ``roots``, ``inputs``.
    """

    __slots__ = ("_reads", "expression", "field", "inputs", "references", "roots", "source")

    def __init__(self, source: str, expression: Expression):
        self.source = source
        self.field = expression.field
        self.expression = expression
        self._reads = expression._reads
        self.references = expression.references
        self.roots = expression.roots
        self.inputs = expression.inputs

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """Evaluate against the runtime context.

        Raises :class:`ExpressionError` when evaluation fails or the result is not a bool
        (CEL has no truthiness: ``1`` or ``'yes'`` are errors, not true).
        """
        value = self.expression.evaluate(select(context, self._reads))
        if value is True or value is False:
            return value
        raise ExpressionError(
            self.field,
            f"must evaluate to true or false, but {self.expression.text!r} gave "
            f"{_type_name(value)} {to_text(to_json_value(value))[:60]}",
        )

    def __repr__(self) -> str:
        return f"Condition({self.field}: {self.expression.text!r})"


def compile_condition(expr: str, field: str = "when") -> Condition:
    """Compile a bare CEL expression such as ``inputs.env == 'prod'``.

    A condition wholly wrapped as one template (``${{ inputs.dryRun }}``) is accepted too,
    as in GitHub Actions' ``if:``: ``$`` is not CEL, so the wrapping cannot change meaning.
    Raises :class:`ExpressionError` naming ``field`` for the problems
    :func:`compile_template` reports.
    """
    if not isinstance(expr, str):
        raise ExpressionError(field, f"must be a CEL expression string, not {_type_name(expr)}")
    text = expr.strip()
    if OPEN in text:
        try:
            parts, is_expr = _split(text)
        except _Invalid as exc:
            raise ExpressionError(field, str(exc)) from None
        around = "".join(p for p, e in zip(parts, is_expr, strict=True) if not e)
        if sum(is_expr) != 1 or around.strip():
            raise ExpressionError(field, "a condition is one bare CEL expression, without ${{ }}")
        text = next(p for p, e in zip(parts, is_expr, strict=True) if e)
    if not text:
        raise ExpressionError(field, "empty expression")
    return Condition(expr, _expression(text, field))
