"""Server-owned metadata: what the API server stamps on create, keeps on update, sets on delete.

Sources: k8s.io/apiserver/pkg/registry/rest (create.go ``BeforeCreate``, update.go
``BeforeUpdate``, delete.go), the generic registry store (``markAsDeleting``), and the custom
resource strategies (apiextensions-apiserver/pkg/registry/customresource/strategy.go):

- create: ``uid`` (UUID), ``creationTimestamp`` (RFC 3339, seconds, ``Z``), ``generation: 1``,
  ``resourceVersion``; a ``generateName`` gets 5 random characters; the namespace comes from
  the URL; client values for ``deletionTimestamp`` and friends are dropped.
- update: ``uid``, ``creationTimestamp``, ``deletionTimestamp``,
  ``deletionGracePeriodSeconds`` and ``generation`` cannot be changed by clients;
  ``generation`` is bumped when anything but ``metadata`` (and ``status``, for resources with
  a status subresource) changed.
- delete with finalizers: ``deletionTimestamp`` = now, ``deletionGracePeriodSeconds: 0``,
  generation bumped once.
"""

from __future__ import annotations

import copy
import datetime
import secrets
import uuid
from typing import Any

# The alphabet of utilrand.String (no vowels, no confusable digits).
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_ALLOWED_METADATA = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation",
    "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
    "annotations", "ownerReferences", "finalizers", "managedFields",
})
_SERVER_OWNED = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                 "generation")


def now_rfc3339() -> str:
    """``metav1.Now()`` serialized: second precision, UTC, ``Z``."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate_name(prefix: str) -> str:
    """``names.SimpleNameGenerator``: the prefix (cut to fit 63 chars) plus 5 random chars."""
    suffix = "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
    return prefix[: 63 - 5] + suffix


def unknown_metadata_fields(meta: dict[str, Any]) -> list[str]:
    """Keys of ``metadata`` that ObjectMeta does not have (dropped by the typed decoder)."""
    return sorted(k for k in meta if k not in _ALLOWED_METADATA)


def clean_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """ObjectMeta as decoded: unknown keys dropped, empty maps/lists omitted (omitempty)."""
    cleaned = {k: v for k, v in meta.items() if k in _ALLOWED_METADATA}
    for key in ("labels", "annotations", "ownerReferences", "finalizers", "managedFields"):
        if key in cleaned and not cleaned[key]:
            del cleaned[key]
    cleaned.pop("selfLink", None)
    return cleaned


def stamp_create(obj: dict[str, Any], *, namespace: str, rv: int) -> dict[str, Any]:
    """A new object's metadata after ``BeforeCreate``; returns a new dict."""
    new = copy.deepcopy(obj)
    meta = clean_metadata(new.get("metadata") or {})
    if namespace:
        meta["namespace"] = namespace
    else:
        meta.pop("namespace", None)
    for key in ("deletionTimestamp", "deletionGracePeriodSeconds"):
        meta.pop(key, None)
    meta["uid"] = str(uuid.uuid4())
    meta["creationTimestamp"] = now_rfc3339()
    meta["generation"] = 1
    meta["resourceVersion"] = str(rv)
    new["metadata"] = _ordered_meta(meta)
    return new


def keep_server_fields(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """An update's object with server-owned metadata taken from the stored object."""
    result = copy.deepcopy(new)
    meta = clean_metadata(result.get("metadata") or {})
    old_meta = old.get("metadata", {})
    for key in (*_SERVER_OWNED, "name", "namespace"):
        if key in old_meta:
            meta[key] = copy.deepcopy(old_meta[key])
        else:
            meta.pop(key, None)
    meta["resourceVersion"] = old_meta.get("resourceVersion", "")
    result["metadata"] = _ordered_meta(meta)
    return result


def spec_changed(new: dict[str, Any], old: dict[str, Any], *, status_is_separate: bool) -> bool:
    """Whether an update changes what ``generation`` counts: everything but ``metadata``
    and, when the status is a subresource, ``status``."""
    ignored = {"metadata", "status"} if status_is_separate else {"metadata"}
    strip_new = {k: v for k, v in new.items() if k not in ignored}
    strip_old = {k: v for k, v in old.items() if k not in ignored}
    return strip_new != strip_old


def mark_deleting(obj: dict[str, Any]) -> dict[str, Any]:
    """``markAsDeleting``: deletionTimestamp now (if unset), grace 0, generation + 1 once."""
    new = copy.deepcopy(obj)
    meta = new["metadata"]
    if not meta.get("deletionTimestamp"):
        meta["deletionTimestamp"] = now_rfc3339()
        if meta.get("generation", 0) > 0:
            meta["generation"] = meta["generation"] + 1
    meta["deletionGracePeriodSeconds"] = 0
    new["metadata"] = _ordered_meta(meta)
    return new


_META_ORDER = ("name", "generateName", "namespace", "uid", "resourceVersion", "generation",
               "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
               "annotations", "ownerReferences", "finalizers", "managedFields")


def _ordered_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """ObjectMeta field order, as Go serializes it (for readable ``-o yaml`` diffs)."""
    ordered = {k: meta[k] for k in _META_ORDER if k in meta}
    ordered.update({k: v for k, v in meta.items() if k not in ordered})
    return ordered
