"""Lexical analysis of CEL text: tokens, string literals, the free variables an expression
uses and the static selection paths it reads (``tasks.a.outputs.id``), and parse-error text."""

from __future__ import annotations

import re
from dataclasses import dataclass

import cel

from .language import EXECUTION_FIELDS, MACROS, SELF_FIELDS, TASK_FIELDS

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
                    f"task {name!r} has no field {field!r}; "
                    "a task has 'outputs', 'phase' and 'error'"
                )
        elif tok == "inputs" and name is not None:
            inputs.add(name)
        elif tok == "execution" and name is not None and name not in EXECUTION_FIELDS:
            problems.append(f"execution has no field {name!r}; it has "
                            + ", ".join(repr(f) for f in sorted(EXECUTION_FIELDS)))
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
    return f"does not parse at {where}: {_plain(detail.strip())}"


_MISMATCH_RE = re.compile(r"^(?:mismatched|extraneous) input '(.*?)' expecting .*$")


def _plain(detail: str) -> str:
    """The parser's detail without its list of every token it would have accepted."""
    detail = detail.removeprefix("Syntax error: ")
    match = _MISMATCH_RE.match(detail)
    if match is None:
        return detail.replace("'<EOF>'", "the end")
    found = match.group(1)
    return "the expression ends too early" if found == "<EOF>" else f"unexpected {found!r}"


def _first_sentence(message: str) -> str:
    lines = message.strip().splitlines()
    line = lines[0] if lines else message
    cut = line.find(". ")
    return (line[:cut] if cut > 0 else line).rstrip(".:")
