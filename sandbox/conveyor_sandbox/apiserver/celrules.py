"""``x-kubernetes-validations`` (CEL) rules of CRD schemas, evaluated with PyPI ``cel``.

Semantics follow the API server (apiextensions-apiserver/pkg/apiserver/schema/cel/
validation.go and the CRD docs, "Validation rules"):

- A rule runs at its schema node with ``self`` bound to the value there.
- Rules mentioning ``oldSelf`` are transition rules: they run only on update and only where
  an old value exists at the same place (through objects and map-type lists), unless
  ``optionalOldSelf`` is set (then ``oldSelf`` is null on create).
- A false result fails with ``message``, else ``messageExpression``'s value, else
  ``failed rule: <rule>``; the error's bad value is the node's type name
  (``spec: Invalid value: "object": spec is immutable``). ``reason`` picks the error type
  (FieldValueForbidden, FieldValueRequired, FieldValueDuplicate, default Invalid) and
  ``fieldPath`` the reported field.
- Evaluation errors are reported as ``<error> evaluating rule: <message or rule>``
  (e.g. ``no such key: x evaluating rule: self.x > 0``).

Of the Kubernetes CEL libraries (https://kubernetes.io/docs/reference/using-api/cel/) the
string extensions (``lowerAscii``, ``upperAscii``, ``trim``, ``split``, ``join``, ``replace``,
``substring``, ``indexOf``, ``lastIndexOf``, ``charAt``), the list library (``isSorted``,
``sum``, ``min``, ``max``), regex ``find``/``findAll`` and ``isURL`` are provided on top of
PyPI ``cel``; rules using others (e.g. ``quantity``, ``format``) fail with an evaluation error
naming the function.
"""

from __future__ import annotations

import functools
import re
import urllib.parse
from collections.abc import Callable
from typing import Any

import cel

from . import fielderrors
from .fielderrors import FieldError
from .jsontypes import json_type

_OLD_SELF = re.compile(r"\boldSelf\b")


@functools.lru_cache(maxsize=1024)
def compile_rule(expression: str) -> Any:
    """Compile (cached); raises ``ValueError`` on syntax errors."""
    return cel.compile(expression)


def _substring(text: str, start: int, end: int | None = None) -> str:
    if start < 0 or start > len(text) or (end is not None and not start <= end <= len(text)):
        raise ValueError(f"index out of range: {start}")
    return text[start:end]


def _index_of(target: Any, item: Any, start: int = 0) -> int:
    if isinstance(target, str):
        return target.find(item, start)
    return next((i for i, value in enumerate(target) if value == item), -1)


def _last_index_of(target: Any, item: Any) -> int:
    if isinstance(target, str):
        return target.rfind(item)
    return next((i for i in range(len(target) - 1, -1, -1) if target[i] == item), -1)


def _is_url(text: str) -> bool:
    parsed = urllib.parse.urlparse(text)
    return bool(parsed.scheme) and (bool(parsed.netloc) or parsed.scheme in ("mailto", "urn"))


def _find(text: str, pattern: str) -> str:
    match = re.search(pattern, text)
    return match.group(0) if match else ""


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "lowerAscii": lambda text: text.lower(),
    "upperAscii": lambda text: text.upper(),
    "trim": lambda text: text.strip(),
    "split": lambda text, sep, limit=-1: text.split(sep, limit - 1 if limit > 0 else -1),
    "join": lambda items, sep="": sep.join(items),
    "replace": lambda text, old, new, limit=-1: text.replace(old, new, limit),
    "substring": _substring,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "charAt": lambda text, index: text[index] if index < len(text) else "",
    "isSorted": lambda items: list(items) == sorted(items),
    "sum": lambda items: sum(items),
    "min": lambda items: min(items),
    "max": lambda items: max(items),
    "find": _find,
    "findAll": lambda text, pattern, limit=-1: re.findall(pattern, text)[
        : limit if limit >= 0 else None],
    "isURL": _is_url,
}


def is_transition_rule(rule: dict[str, Any]) -> bool:
    return bool(_OLD_SELF.search(str(rule.get("rule", ""))))


def check_rule_syntax(rule: dict[str, Any]) -> str | None:
    """A compile error message for the rule, or ``None`` (used when a CRD is written)."""
    try:
        compile_rule(str(rule.get("rule", "")))
        if rule.get("messageExpression"):
            compile_rule(str(rule["messageExpression"]))
    except ValueError as exc:
        return str(exc)
    return None


def type_name(schema: dict[str, Any], value: Any) -> str:
    """The schema type shown as the bad value of CEL errors (``"object"``, ``"string"``...)."""
    declared = schema.get("type")
    if declared:
        return str(declared)
    return "string" if value is None else json_type(value)


def evaluate(
    rules: list[dict[str, Any]],
    schema: dict[str, Any],
    value: Any,
    path: str,
    *,
    has_old: bool,
    old: Any,
    is_update: bool,
) -> list[FieldError]:
    """Run a node's rules; return the failures."""
    failures: list[FieldError] = []
    bad_value = type_name(schema, value)
    for rule in rules:
        expression = str(rule.get("rule", ""))
        transition = is_transition_rule(rule)
        optional_old = bool(rule.get("optionalOldSelf"))
        if transition and not (is_update and has_old) and not optional_old:
            continue
        variables: dict[str, Any] = {"self": value}
        if transition:
            variables["oldSelf"] = old if has_old else None
        field = path + str(rule.get("fieldPath") or "") if rule.get("fieldPath") else path
        field = field.lstrip(".") or "<nil>"
        try:
            result = compile_rule(expression).execute(_context(variables))
        except (ValueError, RuntimeError, KeyError, TypeError) as exc:
            shown = str(rule.get("message") or "").strip() or expression.strip()
            detail = f"{_describe(exc)} evaluating rule: {shown}"
            failures.append(FieldError(fielderrors.INVALID, field, bad_value, detail))
            continue
        if result is True:
            continue
        failures.append(_failure(rule, field, bad_value, variables, expression))
    return failures


def _context(variables: dict[str, Any]) -> Any:
    return cel.Context(variables=variables, functions=_FUNCTIONS)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else ''}"
    return str(exc)


def _failure(
    rule: dict[str, Any], field: str, bad_value: str, variables: dict[str, Any], expression: str
) -> FieldError:
    message = str(rule.get("message") or "").strip()
    if not message and rule.get("messageExpression"):
        try:
            evaluated = compile_rule(str(rule["messageExpression"])).execute(
                _context(variables))
            if isinstance(evaluated, str) and evaluated.strip():
                message = evaluated.strip()
        except (ValueError, RuntimeError, KeyError, TypeError):
            message = ""
    if not message:
        message = f"failed rule: {expression.strip()}"
    reason = rule.get("reason") or fielderrors.INVALID
    if reason == fielderrors.FORBIDDEN:
        return FieldError(fielderrors.FORBIDDEN, field, detail=message)
    if reason == fielderrors.REQUIRED:
        return FieldError(fielderrors.REQUIRED, field, detail=message)
    if reason == fielderrors.DUPLICATE:
        return FieldError(fielderrors.DUPLICATE, field, bad_value, message)
    return FieldError(fielderrors.INVALID, field, bad_value, message)
