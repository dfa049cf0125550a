"""Label and field selectors of list and watch requests.

Label selector syntax is ``labels.Parse`` (k8s.io/apimachinery/pkg/labels/selector.go):
comma-separated requirements ``key``, ``!key``, ``key=v``, ``key==v``, ``key!=v``,
``key in (a,b)``, ``key notin (a,b)``, ``key>N``, ``key<N``; all must hold.
Field selector syntax is ``fields.ParseSelector`` (fields/selector.go): ``a=b``, ``a==b``,
``a!=b`` joined by commas, with ``\\,``, ``\\=`` and ``\\\\`` escapes. Which field labels exist is
per resource (``metadata.name`` and ``metadata.namespace`` always); others answer 400 like the
server's ``field label not supported: x``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

from . import errors

_KEY = re.compile(
    r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)


@dataclasses.dataclass(frozen=True)
class LabelRequirement:
    key: str
    op: str  # exists, !exists, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.op:
            case "exists":
                return present
            case "!exists":
                return not present
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case "gt" | "lt":
                try:
                    number = int(str(value))
                except ValueError:
                    return False
                bound = int(self.values[0])
                return number > bound if self.op == "gt" else number < bound
        return False


@dataclasses.dataclass(frozen=True)
class LabelSelector:
    """A parsed label selector; the empty selector matches everything."""

    requirements: tuple[LabelRequirement, ...] = ()

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        labels = labels or {}
        return all(req.matches(labels) for req in self.requirements)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


_SET_RE = re.compile(r"^\s*(\S+)\s+(in|notin)\s*\((.*)\)\s*$")


def is_label_key(key: str) -> bool:
    """Whether ``key`` is a valid label key (optional DNS prefix, a name part)."""
    return bool(_KEY.match(key))


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``labelSelector``; raises 400 BadRequest on syntax errors."""
    if not text or not text.strip():
        return LabelSelector()
    requirements: list[LabelRequirement] = []
    for raw in _split_top_level(text):
        term = raw.strip()
        if not term:
            raise errors.bad_request(
                f"unable to parse requirement: found '', expected: identifier ({text})"
            )
        if match := _SET_RE.match(term):
            key, op, values = match.group(1), match.group(2), match.group(3)
            items = tuple(v.strip() for v in values.split(",") if v.strip())
            requirements.append(LabelRequirement(_check_key(key), op, items))
            continue
        if term.startswith("!"):
            requirements.append(LabelRequirement(_check_key(term[1:].strip()), "!exists"))
            continue
        for symbol, op in (("!=", "!="), ("==", "="), ("=", "="), (">", "gt"), ("<", "lt")):
            key, sep, value = term.partition(symbol)
            if sep:
                value = value.strip()
                if op in ("gt", "lt") and not re.fullmatch(r"-?\d+", value):
                    raise errors.bad_request(
                        f"unable to parse requirement: for 'Gt', 'Lt' operators, the value must "
                        f"be an integer: {value!r}"
                    )
                requirements.append(LabelRequirement(_check_key(key.strip()), op, (value,)))
                break
        else:
            requirements.append(LabelRequirement(_check_key(term), "exists"))
    return LabelSelector(tuple(requirements))


def _check_key(key: str) -> str:
    if not _KEY.match(key):
        raise errors.bad_request(
            f"unable to parse requirement: values[0][{key}]: Invalid value: {key!r}: name part "
            "must consist of alphanumeric characters, '-', '_' or '.'"
        )
    return key


@dataclasses.dataclass(frozen=True)
class FieldRequirement:
    field: str
    op: str  # "=" or "!="
    value: str


@dataclasses.dataclass(frozen=True)
class FieldSelector:
    """A parsed field selector; evaluated against a resource's field labels."""

    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        for req in self.requirements:
            actual = fields.get(req.field, "")
            if (actual == req.value) != (req.op == "="):
                return False
        return True

    def exact(self, field: str) -> str | None:
        """The value ``field`` must equal, if the selector pins it (e.g. ``metadata.name``)."""
        for req in self.requirements:
            if req.field == field and req.op == "=":
                return req.value
        return None


def _split_unescaped(text: str, separator: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append("\\" + char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def parse_field_selector(text: str | None, supported: Callable[[str], bool]) -> FieldSelector:
    """Parse ``fieldSelector``; 400 BadRequest on syntax errors or unsupported field labels."""
    if not text or not text.strip():
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        if not term:
            continue
        for symbol, op in (("!=", "!="), ("==", "="), ("=", "=")):
            index = _find_unescaped(term, symbol)
            if index >= 0:
                field = _unescape(term[:index]).strip()
                value = _unescape(term[index + len(symbol):])
                if not supported(field):
                    raise errors.bad_request(f'field label not supported: {field}')
                requirements.append(FieldRequirement(field, op, value))
                break
        else:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
    return FieldSelector(tuple(requirements))


def _find_unescaped(text: str, symbol: str) -> int:
    index = 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text.startswith(symbol, index):
            return index
        index += 1
    return -1


def get_path(obj: Any, dotted: str) -> Any:
    """The value at a dotted path (``involvedObject.name``), or ``None``."""
    current = obj
    for part in dotted.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


def field_string(value: Any) -> str:
    """How a field label value compares: strings as is, others like Go's ``%v``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
