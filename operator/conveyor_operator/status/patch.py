"""From a desired status to the write that makes it so (pure): merge and JSON patches."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def status_patch(previous: dict[str, Any] | None, desired: dict[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns ``previous`` status into ``desired``.

    Keys equal in both are left out; an empty result means nothing to write. ``None`` in
    ``desired`` deletes a key that ``previous`` has, and is dropped when it has none.
    """
    previous = previous or {}
    patch = {}
    for key, value in desired.items():
        if value is None:
            if previous.get(key) is not None:
                patch[key] = None
        elif previous.get(key) != value:
            patch[key] = value
    return patch


def status_json_patch(uid: str | None, patch: dict[str, Any],
                      present: Collection[str] | None) -> list[dict[str, Any]]:
    """RFC 6902 operations that apply the merge patch ``patch`` (from :func:`status_patch`)
    to the status of the object whose uid is ``uid``.

    ``present`` names the status keys the object has now, or is None when it has no status
    at all (a new object): then the whole status is added at once. ``None`` values remove
    keys that are present and are dropped otherwise. The operations start with a ``test``
    of ``/metadata/uid`` (RFC 6902 section 4.6) when ``uid`` is given: a write meant for a
    deleted object fails (the API server answers 422) instead of landing on a new object
    with the same name. A merge patch cannot carry that guard: the status subresource
    ignores everything outside ``status``, ``metadata.uid`` included.
    """
    ops: list[dict[str, Any]] = []
    if uid:
        ops.append({"op": "test", "path": "/metadata/uid", "value": uid})
    if present is None:
        ops.append({"op": "add", "path": "/status",
                    "value": {k: v for k, v in patch.items() if v is not None}})
        return ops
    for key, value in patch.items():
        path = "/status/" + key.replace("~", "~0").replace("/", "~1")
        if value is not None:
            ops.append({"op": "add", "path": path, "value": value})
        elif key in present:
            ops.append({"op": "remove", "path": path})
    return ops
