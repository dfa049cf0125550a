"""Values out of CEL: results as JSON-compatible values (proto3 JSON mapping for timestamps,
durations and bytes), as template text, and CEL type names for messages."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import cel

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
