"""Field errors worded exactly like the API server's, so kubectl prints familiar messages.

Mirrors k8s.io/apimachinery/pkg/util/validation/field (errors.go): an error has a type, a field
path (``spec.items[0].name``, ``metadata.labels[app]``), an optional bad value and a detail, and
renders as ``<field>: <Type text>[: <value>][: <detail>]``, e.g.
``spec.workflowRef.name: Required value`` or
``spec.size: Unsupported value: "huge": supported values: "small", "large"``.
Values are printed as Go's ``fmt`` would (``%q`` for strings, ``%v`` for numbers and booleans,
``%#v`` otherwise), which is why :func:`go_value` and :func:`go_repr` exist.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Iterable
from typing import Any

# CauseType values (metav1.CauseType) and their human text (ErrorType.String()).
REQUIRED = "FieldValueRequired"
INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
NOT_SUPPORTED = "FieldValueNotSupported"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
NOT_FOUND = "FieldValueNotFound"
INTERNAL = "InternalError"

_TEXT = {
    REQUIRED: "Required value",
    INVALID: "Invalid value",
    TYPE_INVALID: "Invalid value",
    NOT_SUPPORTED: "Unsupported value",
    DUPLICATE: "Duplicate value",
    FORBIDDEN: "Forbidden",
    TOO_LONG: "Too long",
    TOO_MANY: "Too many",
    NOT_FOUND: "Not found",
    INTERNAL: "Internal error",
}
# Types whose body never shows the bad value (ErrorBody in errors.go).
_VALUELESS = frozenset({REQUIRED, FORBIDDEN, TOO_LONG, INTERNAL})


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


OMIT: Any = _Omit()


@dataclasses.dataclass(frozen=True)
class FieldError:
    """One invalid field: ``type`` is a CauseType such as :data:`REQUIRED`."""

    type: str
    field: str
    bad_value: Any = OMIT
    detail: str = ""

    def body(self) -> str:
        """The message without the field path (``StatusCause.message``)."""
        text = _TEXT.get(self.type, self.type)
        if self.type not in _VALUELESS and self.bad_value is not OMIT:
            text = f"{text}: {go_value(self.bad_value)}"
        if self.detail:
            text = f"{text}: {self.detail}"
        return text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}" if self.field else self.body()

    def cause(self) -> dict[str, str]:
        """As a ``StatusCause`` of an Invalid ``Status``."""
        return {"reason": self.type, "message": self.body(), "field": self.field}


def aggregate(errors: Iterable[FieldError]) -> str:
    """``utilerrors.NewAggregate(errs).Error()``: one message as is, several as ``[a, b]``."""
    messages: list[str] = []
    for error in errors:
        text = str(error)
        if text not in messages:
            messages.append(text)
    if len(messages) == 1:
        return messages[0]
    return "[" + ", ".join(messages) + "]"


def go_quote(text: str) -> str:
    """Go's ``%q`` for a string (close enough: JSON escaping without ASCII-only output)."""
    return json.dumps(text, ensure_ascii=False)


def go_float(number: float) -> str:
    """Go's ``%v`` for a float64 (``strconv.FormatFloat(f, 'g', -1, 64)`` with Go exponents)."""
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if math.isnan(number):
        return "NaN"
    if number == int(number) and abs(number) < 1e21:
        return str(int(number))
    text = repr(number)
    if "e" in text:
        mantissa, exponent = text.split("e")
        sign = "-" if exponent.startswith("-") else "+"
        text = f"{mantissa}e{sign}{exponent.lstrip('+-').zfill(2)}"
    return text


def go_number(value: bool | int | float) -> str:
    """A JSON boolean or number as Go prints it (``true``, ``3``, floats via ``go_float``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return go_float(value)


class GoLiteral(str):
    """A bad value printed verbatim, e.g. ``0x0`` (how Go prints a uint64 zero with ``%#v``)."""


def go_value(value: Any) -> str:
    """How ``field.Error`` prints a bad value: ``%v`` for scalars, ``%q`` for strings."""
    if isinstance(value, GoLiteral):
        return str(value)
    if value is None:
        return '"null"'
    if isinstance(value, bool | int | float):
        return go_number(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_repr(value)


def go_repr(value: Any) -> str:
    """Go's ``%#v`` of a decoded JSON value (``map[string]interface {}{"a":1}`` and so on)."""
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool | int | float):
        return go_number(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict):
        items = ", ".join(f"{go_quote(str(k))}:{go_repr(v)}" for k, v in sorted(value.items()))
        return "map[string]interface {}{" + items + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(go_repr(v) for v in value) + "}"
    return repr(value)


def go_print(value: Any) -> str:
    """Go's ``fmt.Sprint`` (``%v``) of a decoded JSON value, as JSONPath printing does."""
    if value is None:
        return "<nil>"
    if isinstance(value, bool | int | float):
        return go_number(value)
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_print(v)}" for k, v in sorted(value.items())) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_print(v) for v in value) + "]"
    return str(value)
