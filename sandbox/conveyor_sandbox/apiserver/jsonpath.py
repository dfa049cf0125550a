"""The "simple JSONPath" of CRD printer columns and selectable fields.

The API server evaluates ``additionalPrinterColumns[].jsonPath`` with k8s.io/client-go/util/
jsonpath, wrapped in ``{...}``, and uses the first result only
(apiextensions-apiserver/pkg/registry/customresource/tableconvertor). Supported here:
``.a.b``, ``['a']``/``["a"]``, ``[0]``/``[-1]``, ``[*]``, and filters
``[?(@.type=="Ready")]``, ``[?(@.type!="Ready")]``, ``[?(@.x)]``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z0-9_\-/$]+)
      | \[\s*(?P<quote>['"])(?P<qname>.*?)(?P=quote)\s*\]
      | \[\s*(?P<index>-?\d+)\s*\]
      | \[\s*\*\s*\]
      | \[\s*\?\(\s*@(?P<fpath>(?:\.[A-Za-z0-9_\-/$]+)+)\s*
            (?:(?P<fop>==|!=)\s*(?:(?P<fq>['"])(?P<fstr>.*?)(?P=fq)|(?P<fnum>-?[\d.]+)
            |(?P<fbool>true|false)))?\s*\)\s*\]
      | \.\*
    """,
    re.VERBOSE,
)


class JsonPathError(ValueError):
    """The expression is outside the supported subset."""


def compile_path(expression: str) -> list[re.Match[str]]:
    """Tokenize a JSONPath; raises :class:`JsonPathError` if it is not simple."""
    text = expression.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    tokens: list[re.Match[str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise JsonPathError(f"unsupported JSONPath at {text[position:]!r} in {expression!r}")
        tokens.append(match)
        position = match.end()
    return tokens


def find(obj: Any, expression: str) -> list[Any]:
    """All values the path selects, in document order (``[]`` when nothing matches)."""
    values: list[Any] = [obj]
    for token in compile_path(expression):
        values = list(_step(values, token))
    return values


def first(obj: Any, expression: str) -> tuple[bool, Any]:
    """``(found, value)`` of the first match, as printer columns use it."""
    try:
        values = find(obj, expression)
    except JsonPathError:
        return False, None
    return (True, values[0]) if values else (False, None)


def _step(values: list[Any], token: re.Match[str]) -> Iterator[Any]:
    groups = token.groupdict()
    for value in values:
        if groups["name"] is not None or groups["qname"] is not None:
            key = groups["name"] if groups["name"] is not None else groups["qname"]
            if isinstance(value, dict) and key in value:
                yield value[key]
        elif groups["index"] is not None:
            index = int(groups["index"])
            if isinstance(value, list) and -len(value) <= index < len(value):
                yield value[index]
        elif groups["fpath"] is not None:
            if isinstance(value, list):
                yield from (item for item in value if _filter(item, groups))
        else:  # [*] or .*
            if isinstance(value, list):
                yield from value
            elif isinstance(value, dict):
                yield from value.values()


def _filter(item: Any, groups: dict[str, Any]) -> bool:
    current = item
    for part in groups["fpath"].split(".")[1:]:
        if not isinstance(current, dict) or part not in current:
            return False
        current = current[part]
    if groups["fop"] is None:
        return current is not None
    if groups["fstr"] is not None:
        expected: Any = groups["fstr"]
    elif groups["fbool"] is not None:
        expected = groups["fbool"] == "true"
    else:
        number = groups["fnum"]
        expected = float(number) if "." in number else int(number)
    if isinstance(current, bool) or isinstance(expected, bool):
        equal = current is expected  # JSON true never equals 1
    else:
        equal = current == expected
    return equal if groups["fop"] == "==" else not equal
