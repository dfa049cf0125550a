"""The CEL extension libraries Kubernetes users know, beyond the CEL core.

The CEL runtime (cel-rust) implements the core specification only. Kubernetes adds the
cel-go extension libraries (strings, lists, sets, math, encoders) and its own ``lists`` and
``regex`` libraries (https://kubernetes.io/docs/reference/using-api/cel/). Most of them come
from the ``cel.stdlib`` module of the same ``common-expression-language`` package
(Python callbacks registered on a ``cel.Context``); what it lacks is written here, after the
cel-go and Kubernetes definitions it names:

- ``format`` (cel-go ``strings.format``): ``"%s has %d items".format([name, n])``, verbs
  ``%s %d %f %e %x %X %o %b %%`` with an optional precision for ``%f``/``%e``;
- ``find``, ``findAll`` (Kubernetes regex library): the first match, all matches (at most
  ``limit``); Python's :mod:`re` syntax, which agrees with RE2 on everything RE2 accepts
  except possessive and a few Unicode classes;
- ``isSorted``, and ``indexOf``/``lastIndexOf`` on lists (Kubernetes lists library).

A function is registered only on the evaluations of expressions that call it
(:func:`used_functions` at compile time), so an expression using none costs what it did.
There is deliberately no ``now()``: an expression gives the same value on every attempt of
a run (the run's start and scheduled times are variables instead).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from cel import stdlib

#: Prefixes of namespaced functions (``math.greatest``): written like a variable followed by
#: a call, so the compiler must not take them for unknown variables.
NAMESPACES = frozenset({"math", "sets", "base64", "strings", "lists"})

_VERB_RE = re.compile(r"%(?:\.(\d+))?([sdfeExXob%])")
_NAMESPACED_CALL_RE = re.compile(r"\b(" + "|".join(sorted(NAMESPACES)) +
                                 r")\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def _format_one(verb: str, precision: str | None, value: Any) -> str:
    if verb == "s":
        if isinstance(value, bool):
            return "true" if value else "false"
        return "null" if value is None else str(value)
    if verb == "d":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"format: %d expects an integer, got {type(value).__name__}")
        return str(value)
    if verb in "fe":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"format: %{verb} expects a number, got {type(value).__name__}")
        return f"{float(value):.{int(precision) if precision else 6}{verb}}"
    if isinstance(value, bytes | str) and verb in "xX":
        data = value.encode() if isinstance(value, str) else value
        text = data.hex()
        return text.upper() if verb == "X" else text
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"format: %{verb} expects an integer, got {type(value).__name__}")
    return format(value, {"x": "x", "X": "X", "o": "o", "b": "b"}[verb])


def string_format(template: str, args: Sequence[Any]) -> str:
    """cel-go ``strings.format``: ``template`` with each verb replaced by the next of
    ``args`` (a list). Raises ``ValueError`` for too few arguments or a value of the wrong
    type for its verb."""
    values = iter(args)

    def substitute(match: re.Match[str]) -> str:
        precision, verb = match.groups()
        if verb == "%":
            return "%"
        try:
            value = next(values)
        except StopIteration:
            raise ValueError(f"format: not enough arguments for {template!r}") from None
        return _format_one(verb, precision, value)

    return _VERB_RE.sub(substitute, template)


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def regex_find(text: str, pattern: str) -> str:
    """Kubernetes ``find``: the first match of ``pattern`` in ``text``, or ``""``."""
    match = _regex(pattern).search(text)
    return match.group(0) if match else ""


def regex_find_all(text: str, pattern: str, limit: int = -1) -> list[str]:
    """Kubernetes ``findAll``: every match of ``pattern`` in ``text`` (at most ``limit``
    when it is not negative), in order."""
    found = [m.group(0) for m in _regex(pattern).finditer(text)]
    return found if limit < 0 else found[:limit]


def is_sorted(items: Sequence[Any]) -> bool:
    """Kubernetes ``isSorted``: whether ``items`` is in ascending order."""
    return all(a <= b for a, b in itertools.pairwise(items))


def index_of(container: Any, item: Any, offset: int = 0) -> int:
    """``indexOf`` on a string (cel-go strings, from ``offset``) or a list (Kubernetes
    lists): the first position of ``item``, or -1."""
    if isinstance(container, str):
        return stdlib.index_of(container, item, offset)
    return next((i for i, x in enumerate(container) if x == item), -1)


def last_index_of(container: Any, item: Any, *offset: int) -> int:
    """``lastIndexOf`` on a string (cel-go strings, up to ``offset``) or a list: the last
    position of ``item``, or -1."""
    if isinstance(container, str):
        return stdlib.last_index_of(container, item, *offset)
    return next((i for i in range(len(container) - 1, -1, -1) if container[i] == item), -1)


#: Every extension function by the name expressions call it with.
EXTENSIONS: Mapping[str, Callable[..., Any]] = {
    **stdlib.STDLIB_FUNCTIONS,
    "format": string_format,
    "strings.format": string_format,
    "find": regex_find,
    "findAll": regex_find_all,
    "isSorted": is_sorted,
    "indexOf": index_of,
    "lastIndexOf": last_index_of,
}


def namespaced_calls(text: str) -> set[str]:
    """The ``namespace.function`` names called in ``text`` (``{"math.greatest"}``)."""
    return {f"{ns}.{fn}" for ns, fn in _NAMESPACED_CALL_RE.findall(text)}


def used_functions(text: str, reported: Sequence[str], native: frozenset[str],
                   ) -> tuple[dict[str, Callable[..., Any]], list[str]]:
    """The extension functions an expression calls, and its unknown function names.

    ``reported``: the function names the CEL runtime lists for the compiled expression
    (a namespaced call by its last part); ``native``: the runtime's own functions. Returns
    ``(functions to register by name, problems)``, a problem being
    ``"unknown function 'math.foo'"`` or ``"unknown function 'foo'"``.
    """
    functions: dict[str, Callable[..., Any]] = {}
    problems = []
    namespaced = namespaced_calls(text)
    for name in sorted(namespaced):
        if name in EXTENSIONS:
            functions[name] = EXTENSIONS[name]
        else:
            problems.append(f"unknown function {name!r}")
    called_by_namespace = {name.rpartition(".")[2] for name in namespaced}
    for name in reported:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
            continue  # an operator such as _+_
        if name in EXTENSIONS and name not in native:
            functions[name] = EXTENSIONS[name]
        elif name == "contains" and "contains" in EXTENSIONS:
            # The runtime's contains is string-only; the extension adds lists and maps and
            # leaves string.contains(string) to the runtime's overload.
            functions[name] = EXTENSIONS[name]
        elif name not in native and name not in called_by_namespace:
            problems.append(f"unknown function {name!r}")
    return functions, problems
