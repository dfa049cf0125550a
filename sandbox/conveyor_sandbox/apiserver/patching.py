"""PATCH bodies: JSON merge patch, JSON patch, strategic merge patch, server-side apply.

- ``application/merge-patch+json``: RFC 7386 (``null`` deletes, objects merge, the rest
  replaces).
- ``application/json-patch+json``: RFC 6902 via the ``jsonpatch`` package. Like the API server
  (endpoints/handlers/patch.go ``applyJSPatch``), a malformed patch is 400 BadRequest and a patch
  that does not apply, including a failed ``test`` op, is 422: kopf relies on this to retry.
- ``application/strategic-merge-patch+json``: for built-ins, lists of known kinds merge by
  their patch merge key (``containers`` by ``name``, ``volumeMounts`` by ``mountPath``,
  ``conditions`` by ``type``, ...) and the directives kubectl emits (``$patch``,
  ``$setElementOrder/...``, ``$deleteFromPrimitiveList/...``, ``$retainKeys``) are honoured;
  everything else behaves as a merge patch. The real server refuses it for custom resources
  (415); the sandbox treats it as a merge patch there too.
- ``application/apply-patch+yaml`` (server-side apply): simplified to "create, or merge the
  applied configuration into the live object"; there is no field ownership, so fields dropped
  from a later applied configuration are not removed.
"""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch
import jsonpointer

from . import errors

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

# patchMergeKey of list fields in the built-in types (k8s.io/api struct tags), by field name.
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
_PRIMITIVE_MERGE = frozenset({"finalizers"})  # patchStrategy "merge" on a list of strings
_DELETE = object()


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 MergePatch(target, patch); returns a new value."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], ops: Any) -> dict[str, Any]:
    """RFC 6902; 400 for malformed patches, 422 when an operation fails (incl. ``test``).

    Operations apply one by one so the failure names its operation, worded like
    evanphx/json-patch (which the API server uses): ``testing value /x failed: test failed``.
    """
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise errors.bad_request("json: cannot unmarshal object into Go value of type "
                                 "jsonpatch.Patch")
    try:
        patches = [jsonpatch.JsonPatch([op]) for op in ops]
    except (jsonpatch.InvalidJsonPatch, jsonpointer.JsonPointerException) as exc:
        raise errors.bad_request(str(exc)) from exc
    document: Any = copy.deepcopy(target)
    for op, patch in zip(ops, patches, strict=True):
        try:
            document = patch.apply(document, in_place=True)
        except jsonpatch.JsonPatchTestFailed as exc:
            raise errors.unprocessable(f"testing value {op.get('path')} failed: test failed"
                                       ) from exc
        except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError,
                KeyError, IndexError) as exc:
            raise errors.unprocessable(f"{op.get('op')} operation does not apply: {exc}") from exc
    if not isinstance(document, dict):
        raise errors.unprocessable("the patched document is not an object")
    return document


def strategic_merge_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """A strategic merge patch with the merge keys of common built-in list fields."""
    if not isinstance(patch, dict):
        raise errors.bad_request("a strategic merge patch must be a JSON object")
    result = _smp_map(target, patch)
    return {} if result is _DELETE else result


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _strip_directives(v) for k, v in value.items()
            if not k.startswith("$") and v is not None
        }
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _smp_map(target: Any, patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    result: dict[str, Any] = copy.deepcopy(target) if isinstance(target, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith("$setElementOrder/"):
            orders[key.split("/", 1)[1]] = value
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = [item for item in result[field] if item not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _smp_map(result.get(key), value)
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _smp_list(key, result.get(key), value)
        else:
            result[key] = value
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            result[field] = _reorder(field, result[field], order)
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_key(field: str, items: list[Any]) -> str | None:
    dicts = [item for item in items if isinstance(item, dict) and item.get("$patch") != "replace"]
    if not dicts or len(dicts) != len([i for i in items if i != {"$patch": "replace"}]):
        return None
    if field == "ports":  # container ports merge by containerPort, service ports by port
        if all("containerPort" in item for item in dicts):
            return "containerPort"
        if all("port" in item for item in dicts):
            return "port"
        return None
    key = _MERGE_KEYS.get(field)
    if key and all(key in item for item in dicts):
        return key
    return None


def _smp_list(field: str, current: Any, patch: list[Any]) -> list[Any]:
    if {"$patch": "replace"} in patch:
        return _strip_directives([item for item in patch if item != {"$patch": "replace"}])
    key = _merge_key(field, patch)
    if key is not None:
        result = copy.deepcopy(current) if isinstance(current, list) else []
        for item in patch:
            index = next((i for i, old in enumerate(result)
                          if isinstance(old, dict) and old.get(key) == item.get(key)), None)
            if item.get("$patch") == "delete":
                if index is not None:
                    del result[index]
                continue
            if index is None:
                result.append(_strip_directives(item))
            else:
                result[index] = _smp_map(result[index], item)
        return result
    if field in _PRIMITIVE_MERGE and isinstance(current, list):
        return list(current) + [item for item in patch if item not in current]
    return _strip_directives(patch)


def _reorder(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = _merge_key(field, order) if order and isinstance(order[0], dict) else None

    def position(item: Any) -> int:
        probe = {key: item.get(key)} if key and isinstance(item, dict) else item
        return order.index(probe) if probe in order else len(order)

    return sorted(items, key=position)


def apply_patch(target: dict[str, Any] | None, applied: Any) -> dict[str, Any]:
    """Simplified server-side apply: the applied configuration merged into the live object."""
    if not isinstance(applied, dict):
        raise errors.bad_request("the applied configuration must be an object")
    if target is None:
        return copy.deepcopy(applied)
    return _deep_merge(target, applied)


def _deep_merge(target: Any, applied: Any) -> Any:
    if isinstance(target, dict) and isinstance(applied, dict):
        result = copy.deepcopy(target)
        for key, value in applied.items():
            result[key] = _deep_merge(result.get(key), value)
        return result
    return copy.deepcopy(applied)
