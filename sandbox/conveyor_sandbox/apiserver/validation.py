"""Custom resources against their CRD's ``openAPIV3Schema``: prune, default, validate.

The API server decodes a custom resource, prunes unknown fields, applies defaults, then
validates (apiextensions-apiserver: pkg/apiserver/schema/pruning, .../defaulting,
pkg/apiserver/validation, .../schema/cel). This module does all of it in one walk:

- Pruning: object keys that the schema does not declare are removed unless the node has
  ``x-kubernetes-preserve-unknown-fields: true`` or ``additionalProperties``; the removed paths
  are reported so the caller can apply ``fieldValidation`` (Strict: 400, Warn: a warning).
  ``apiVersion``, ``kind`` and ``metadata`` at the root (and in
  ``x-kubernetes-embedded-resource`` nodes) are kept.
- Nulls: a ``null`` for a non-nullable field is dropped before defaulting (since 1.20).
- Defaulting: ``default`` of a missing property is applied (then walked, for nested defaults).
- Validation: type (incl. ``x-kubernetes-int-or-string``), enum, required, min/max(Length,
  Items, Properties), minimum/maximum (+exclusive), multipleOf, pattern, a few formats
  (date-time, date, byte, int32, int64, uuid), uniqueItems, ``x-kubernetes-list-type``
  set/map uniqueness, allOf/anyOf/oneOf/not, and CEL rules (:mod:`.celrules`).
- Ratcheting (CRDValidationRatcheting, on by default since 1.30): on update, a value equal to
  the old value at the same place is not re-validated.

Messages are the server's, e.g. ``spec.replicas: Invalid value: "string": spec.replicas in
body must be of type integer: "string"`` (kube-openapi validate errors mapped by
apiextensions-apiserver/pkg/apiserver/validation/validation.go).
"""

from __future__ import annotations

import base64
import binascii
import copy
import dataclasses
import re
from typing import Any

from . import celrules, fielderrors
from .fielderrors import FieldError
from .jsontypes import json_type

_PRUNE = object()  # a walk result meaning "drop this key"
_ROOT_KEPT = ("apiVersion", "kind", "metadata")
_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}(:?\d{2})?)?$"
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}(-?[0-9a-fA-F]{4}){3}-?[0-9a-fA-F]{12}$")


@dataclasses.dataclass
class Outcome:
    """The pruned and defaulted object, its field errors and the pruned (unknown) paths."""

    obj: Any
    errors: list[FieldError]
    unknown_fields: list[str]


def _type_ok(value: Any, declared: str) -> bool:
    actual = json_type(value)
    if declared == "number":
        return actual in ("integer", "number")
    if declared == "integer" and isinstance(value, float) and value.is_integer():
        return False  # 1.0 is a number to the server's decoder, not an integer
    return actual == declared


def process(
    obj: dict[str, Any],
    schema: dict[str, Any] | None,
    old: dict[str, Any] | None,
) -> Outcome:
    """Prune, default and validate a whole custom resource (``old`` on update)."""
    walker = _Walker(is_update=old is not None)
    if not schema:
        return Outcome(copy.deepcopy(obj), [], [])
    result = walker.walk(obj, schema, "", old, old is not None, root=True)
    return Outcome(result, walker.errors, walker.unknown)


def validate_value(value: Any, schema: dict[str, Any], path: str) -> list[FieldError]:
    """Only the validation errors of one value (used for the Scale subresource and tests)."""
    walker = _Walker(is_update=False)
    walker.walk(copy.deepcopy(value), schema, path, None, False)
    return walker.errors


class _Walker:
    def __init__(self, *, is_update: bool) -> None:
        self.is_update = is_update
        self.errors: list[FieldError] = []
        self.unknown: list[str] = []

    def _in_body(self, path: str) -> str:
        return f"{path or 'body'} in body"

    def walk(
        self,
        value: Any,
        schema: dict[str, Any],
        path: str,
        old: Any,
        has_old: bool,
        *,
        root: bool = False,
        check: bool = True,
    ) -> Any:
        if not schema:
            return value
        if value is None:
            if schema.get("nullable"):
                return None
            return _PRUNE
        # Ratcheting: unchanged values keep passing even if rules got stricter.
        check = check and not (has_old and old == value)
        declared = schema.get("type")
        if schema.get("x-kubernetes-int-or-string"):
            if not isinstance(value, int | str) or isinstance(value, bool):
                if check:
                    self._type_error(path, value, "integer,string")
                return value
        elif declared and not _type_ok(value, declared):
            if check:
                self._type_error(path, value, declared)
            return value

        if isinstance(value, dict):
            value = self._walk_object(value, schema, path, old if has_old else None, has_old,
                                      root=root, check=check)
        elif isinstance(value, list):
            value = self._walk_array(value, schema, path, old if has_old else None, check=check)
        elif check:
            self._check_scalar(value, schema, path)

        if check:
            if "enum" in schema and value not in schema["enum"]:
                supported = ", ".join(fielderrors.go_value(v) for v in schema["enum"])
                self.errors.append(FieldError(
                    fielderrors.NOT_SUPPORTED, path, value, f"supported values: {supported}"
                ))
            self._check_combinators(value, schema, path)
        rules = schema.get("x-kubernetes-validations")
        if rules and (check or any(celrules.is_transition_rule(r) for r in rules)):
            # Transition rules still run on unchanged values (they compare with oldSelf).
            selected = rules if check else [r for r in rules if celrules.is_transition_rule(r)]
            self.errors.extend(celrules.evaluate(
                selected, schema, value, path, has_old=has_old, old=old,
                is_update=self.is_update,
            ))
        return value

    def _type_error(self, path: str, value: Any, declared: str) -> None:
        actual = json_type(value)
        self.errors.append(FieldError(
            fielderrors.TYPE_INVALID, path or "<nil>", actual,
            f'{self._in_body(path)} must be of type {declared}: "{actual}"',
        ))

    def _walk_object(
        self,
        value: dict[str, Any],
        schema: dict[str, Any],
        path: str,
        old: Any,
        has_old: bool,
        *,
        root: bool,
        check: bool,
    ) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
        embedded = bool(schema.get("x-kubernetes-embedded-resource"))
        old_map = old if isinstance(old, dict) else {}
        result: dict[str, Any] = {}
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            child_has_old = has_old and key in old_map
            child_old = old_map.get(key)
            if (root or embedded) and key in _ROOT_KEPT and key not in properties:
                result[key] = child
                continue
            if (root or embedded) and key == "metadata":
                result[key] = child  # ObjectMeta is validated by the server, not the schema
                continue
            if key in properties:
                walked = self.walk(child, properties[key], child_path, child_old, child_has_old,
                                   check=check)
            elif isinstance(additional, dict):
                walked = self.walk(child, additional, f"{path}[{key}]", child_old,
                                   child_has_old, check=check)
            elif additional is True or preserve:
                walked = child
            else:
                self.unknown.append(child_path)
                continue
            if walked is not _PRUNE:
                result[key] = walked
        for key, child_schema in properties.items():
            if key not in result and "default" in child_schema:
                child_path = f"{path}.{key}" if path else key
                default = copy.deepcopy(child_schema["default"])
                walked = self.walk(default, child_schema, child_path, None, False, check=False)
                if walked is not _PRUNE:
                    result[key] = walked
        if check:
            for key in schema.get("required") or []:
                if key not in result:
                    self.errors.append(FieldError(
                        fielderrors.REQUIRED, f"{path}.{key}" if path else key
                    ))
            count = len(result)
            if "maxProperties" in schema and count > schema["maxProperties"]:
                self.errors.append(FieldError(
                    fielderrors.TOO_MANY, path or "<nil>", count,
                    f"must have at most {schema['maxProperties']} items",
                ))
            if "minProperties" in schema and count < schema["minProperties"]:
                self.errors.append(FieldError(
                    fielderrors.INVALID, path or "<nil>", count,
                    f"{self._in_body(path)} should have at least {schema['minProperties']} "
                    "properties",
                ))
        return result

    def _walk_array(
        self, value: list[Any], schema: dict[str, Any], path: str, old: Any, *, check: bool
    ) -> list[Any]:
        items = schema.get("items")
        list_type = schema.get("x-kubernetes-list-type")
        keys: list[str] = list(schema.get("x-kubernetes-list-map-keys") or [])
        old_by_key: dict[Any, Any] = {}
        if isinstance(old, list) and list_type == "map" and keys:
            for item in old:
                if isinstance(item, dict):
                    old_by_key[_map_key(item, keys)] = item
        result: list[Any] = []
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            has_old = False
            item_old = None
            if list_type == "map" and keys and isinstance(item, dict):
                key = _map_key(item, keys)
                has_old = key in old_by_key
                item_old = old_by_key.get(key)
            if isinstance(items, dict) and items:
                walked = self.walk(item, items, item_path, item_old, has_old, check=check)
                if walked is _PRUNE:
                    if check:
                        self._type_error(item_path, None, items.get("type", "object"))
                    walked = None
                result.append(walked)
            else:
                result.append(item)
        if not check:
            return result
        count = len(result)
        if "maxItems" in schema and count > schema["maxItems"]:
            noun = "item" if schema["maxItems"] == 1 else "items"
            self.errors.append(FieldError(
                fielderrors.TOO_MANY, path, count, f"must have at most {schema['maxItems']} {noun}"
            ))
        if "minItems" in schema and count < schema["minItems"]:
            self.errors.append(FieldError(
                fielderrors.INVALID, path, result,
                f"{self._in_body(path)} should have at least {schema['minItems']} items",
            ))
        if schema.get("uniqueItems") or list_type == "set":
            seen: list[Any] = []
            for index, item in enumerate(result):
                if item in seen:
                    self.errors.append(FieldError(fielderrors.DUPLICATE, f"{path}[{index}]", item))
                seen.append(item)
        if list_type == "map" and keys:
            seen_keys: list[Any] = []
            for index, item in enumerate(result):
                if not isinstance(item, dict):
                    continue
                key = _map_key(item, keys)
                if key in seen_keys:
                    self.errors.append(FieldError(
                        fielderrors.DUPLICATE, f"{path}[{index}]",
                        {k: item.get(k) for k in keys if k in item},
                    ))
                seen_keys.append(key)
        return result

    def _check_scalar(self, value: Any, schema: dict[str, Any], path: str) -> None:
        where = self._in_body(path)
        if isinstance(value, str):
            length = len(value)
            if "maxLength" in schema and length > schema["maxLength"]:
                limit = schema["maxLength"]
                self.errors.append(FieldError(
                    fielderrors.TOO_LONG, path, value,
                    f"may not be more than {limit} {'byte' if limit == 1 else 'bytes'}",
                ))
            if "minLength" in schema and length < schema["minLength"]:
                self.errors.append(FieldError(
                    fielderrors.INVALID, path, value,
                    f"{where} should be at least {schema['minLength']} chars long",
                ))
            pattern = schema.get("pattern")
            if pattern and not _search(pattern, value):
                self.errors.append(FieldError(
                    fielderrors.INVALID, path, value, f"{where} should match '{pattern}'"
                ))
            fmt = schema.get("format")
            if fmt and not _format_ok(fmt, value):
                self.errors.append(FieldError(
                    fielderrors.INVALID, path, value, f'{where} must be of type {fmt}: "{value}"'
                ))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self._check_number(value, schema, path, where)

    def _check_number(self, value: float, schema: dict[str, Any], path: str, where: str) -> None:
        def fail(detail: str) -> None:
            self.errors.append(FieldError(fielderrors.INVALID, path, value, f"{where} {detail}"))

        if "maximum" in schema:
            bound = schema["maximum"]
            if schema.get("exclusiveMaximum") and value >= bound:
                fail(f"should be less than {fielderrors.go_value(bound)}")
            elif value > bound:
                fail(f"should be less than or equal to {fielderrors.go_value(bound)}")
        if "minimum" in schema:
            bound = schema["minimum"]
            if schema.get("exclusiveMinimum") and value <= bound:
                fail(f"should be greater than {fielderrors.go_value(bound)}")
            elif value < bound:
                fail(f"should be greater than or equal to {fielderrors.go_value(bound)}")
        factor = schema.get("multipleOf")
        if factor and (value / factor) != int(value / factor):
            fail(f"should be a multiple of {fielderrors.go_value(factor)}")
        fmt = schema.get("format")
        if isinstance(value, int) and fmt == "int32" and not -(2**31) <= value < 2**31:
            fail(f'must be of type int32: "{value}"')

    def _check_combinators(self, value: Any, schema: dict[str, Any], path: str) -> None:
        where = self._in_body(path)
        for sub in schema.get("allOf") or []:
            self.errors.extend(_only_validate(value, sub, path, self.is_update))
        any_of = schema.get("anyOf")
        if any_of and not any(not _only_validate(value, s, path, self.is_update) for s in any_of):
            self.errors.append(FieldError(
                fielderrors.INVALID, path, value, f"{where} must validate at least one schema "
                "(anyOf)"
            ))
        one_of = schema.get("oneOf")
        if one_of:
            passing = sum(1 for s in one_of if not _only_validate(value, s, path, self.is_update))
            if passing != 1:
                self.errors.append(FieldError(
                    fielderrors.INVALID, path, value, f"{where} must validate one and only one "
                    "schema (oneOf)"
                ))
        negated = schema.get("not")
        if negated and not _only_validate(value, negated, path, self.is_update):
            self.errors.append(FieldError(
                fielderrors.INVALID, path, value, f"{where} must not validate the schema (not)"
            ))


def _only_validate(value: Any, schema: dict[str, Any], path: str, is_update: bool) -> list[Any]:
    """Errors of a value-validation-only schema (combinators never prune or default)."""
    walker = _Walker(is_update=is_update)
    relaxed = dict(schema)
    relaxed.setdefault("x-kubernetes-preserve-unknown-fields", True)
    walker.walk(copy.deepcopy(value), relaxed, path, None, False)
    return walker.errors


def _map_key(item: dict[str, Any], keys: list[str]) -> tuple[Any, ...]:
    return tuple(repr(item.get(k)) for k in keys)


def _search(pattern: str, value: str) -> bool:
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return True  # ECMA/RE2 syntax Python cannot compile: do not invent failures


def _format_ok(fmt: str, value: str) -> bool:
    match fmt:
        case "date-time" | "datetime":
            return bool(_DATE_TIME.match(value))
        case "date":
            return bool(_DATE.match(value))
        case "uuid":
            return bool(_UUID.match(value))
        case "byte":
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                return False
            return True
    return True
