"""Making task outputs storable before they reach PostgreSQL.

PostgreSQL ``jsonb`` cannot hold the NUL character (``\\u0000``) in any string or key, and
orjson (our encoder) refuses integers outside 64 bits and nesting deeper than 254 levels.
An output that breaks these rules must fail its own task with a clear error instead of
failing the whole batch commit it travels in.
"""

from __future__ import annotations

import json
from typing import Any

#: Deepest nesting accepted; orjson's own limit is 254, leave room for the envelope.
MAX_DEPTH = 200
_INT64 = (-(2**63), 2**63 - 1)


class UnstorableOutput(ValueError):
    """An output value cannot be stored; the message names where it is and why."""


def storable(value: Any, path: str = "outputs", depth: int = 0) -> Any:
    """``value`` with NUL characters replaced by U+FFFD, checked to be storable as jsonb.

    Raises :class:`UnstorableOutput` for integers outside int64, non-finite floats,
    nesting deeper than :data:`MAX_DEPTH` or values that are not JSON types.
    """
    if depth > MAX_DEPTH:
        raise UnstorableOutput(f"{path}: nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise UnstorableOutput(f"{path}: integer {value} does not fit in 64 bits")
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise UnstorableOutput(f"{path}: {value} is not a JSON number")
        return value
    if isinstance(value, dict):
        return {storable(str(k), f"{path} key", depth + 1): storable(v, f"{path}.{k}", depth + 1)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
    raise UnstorableOutput(f"{path}: {type(value).__name__} is not a JSON value")


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON in UTF-8: what it costs stored in PostgreSQL and
    cached in Redis. Values that are not JSON types count as their ``str()``."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False,
                          default=str).encode())


def largest_key(value: dict[str, Any]) -> tuple[str, int] | None:
    """The key of ``value`` whose value is largest as JSON, and that size; None if empty."""
    if not value:
        return None
    sizes = {key: json_size(item) for key, item in value.items()}
    key = max(sizes, key=sizes.__getitem__)
    return key, sizes[key]
