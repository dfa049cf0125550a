"""Update (PUT) and patch (JSON, merge, strategic merge, apply): optimistic concurrency,
the status-subresource strategy, generation, and no-op writes that store nothing."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from .. import crds, errors, fielderrors, patching, stamping
from ..fielderrors import FieldError
from ..registry import ResourceType
from .base import ApiBase
from .kinds import CRDS, NAMESPACES
from .objectmeta import _metadata_errors
from .request import ApiRequest, _Result


class UpdateMixin(ApiBase):
    """Update, patch and the commit both end in."""

    def _update(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
                name: str, subresource: str) -> _Result:
        body = req.json()
        existing = self._get(rtype, namespace, name)
        if subresource == "scale":
            return self._write_scale(req, rtype, version, existing, body)
        incoming = self._incoming(rtype, version, body)
        meta = incoming["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the "
                                     f"name on the URL ({name})")
        if rtype.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        rv = meta.get("resourceVersion")
        if rv and rv != existing["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group, rtype.plural, name, errors.STALE)
        if not rv and rtype.is_custom:
            raise errors.invalid(rtype.group, rtype.kind, name, [FieldError(
                fielderrors.INVALID, "metadata.resourceVersion", fielderrors.GoLiteral("0x0"),
                "must be specified for an update",
            )])
        return self._commit_update(req, rtype, version, existing, incoming, subresource)

    def _patch(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
               name: str, subresource: str) -> _Result:
        content_type = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in patching.PATCH_TYPES:
            raise errors.unsupported_media_type(content_type, patching.PATCH_TYPES)
        existing = self.store.get(rtype.storage_key, namespace, name)
        if content_type == patching.APPLY_PATCH:
            applied = _load_apply(req.body)
            if existing is None:
                if subresource:
                    raise errors.not_found(rtype.group, rtype.plural, name)
                applied.setdefault("metadata", {})["name"] = name
                return self._create(req, rtype, version, namespace, applied)
        if existing is None:
            raise errors.not_found(rtype.group, rtype.plural, name)
        current = (self._scale_object(rtype, existing) if subresource == "scale"
                   else self.present(rtype, version, existing))
        match content_type:
            case patching.JSON_PATCH:
                patched = patching.json_patch(current, req.json())
            case patching.MERGE_PATCH:
                patched = patching.merge_patch(current, req.json())
            case patching.STRATEGIC_MERGE_PATCH:
                data = req.json()
                patched = (patching.merge_patch(current, data) if rtype.is_custom
                           else patching.strategic_merge_patch(current, data))
            case _:
                patched = patching.apply_patch(current, applied)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        if subresource == "scale":
            return self._write_scale(req, rtype, version, existing, patched)
        patched_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if patched_rv and patched_rv != existing["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group, rtype.plural, name, errors.STALE)
        incoming = self._incoming(rtype, version, patched)
        return self._commit_update(req, rtype, version, existing, incoming, subresource)

    def _commit_update(self, req: ApiRequest, rtype: ResourceType, version: str,
                       existing: dict[str, Any], incoming: dict[str, Any],
                       subresource: str) -> _Result:
        name = existing["metadata"]["name"]
        warnings: list[str] = []
        if subresource == "status":
            # The status strategy: everything but status comes from the stored object.
            new = copy.deepcopy(existing)
            if "status" in incoming:
                new["status"] = copy.deepcopy(incoming["status"])
            else:
                new.pop("status", None)
        else:
            new = stamping.keep_server_fields(incoming, existing)
            if rtype.has_status and rtype.storage_key != CRDS:
                if "status" in existing:
                    new["status"] = copy.deepcopy(existing["status"])
                else:
                    new.pop("status", None)
            problems = _metadata_errors(rtype, new)
            if problems:
                raise errors.invalid(rtype.group, rtype.kind, name, problems)
        if rtype.storage_key == CRDS:
            new = crds.apply_defaults(new)
            problems = crds.validate(new, existing)
            if problems:
                raise errors.invalid(rtype.group, rtype.kind, name, problems)
            new = crds.with_status(new, existing)
        elif rtype.storage_key == NAMESPACES and subresource != "status":
            new["status"] = copy.deepcopy(existing.get("status", {"phase": "Active"}))
        elif rtype.is_custom:
            validated = self._validate_custom(req, rtype, version, new, existing, warnings)
            if subresource == "status":
                new = copy.deepcopy(existing)
                if "status" in validated:
                    new["status"] = validated["status"]
                else:
                    new.pop("status", None)
            else:
                new = validated
        old_meta = existing["metadata"]
        if old_meta.get("deletionTimestamp"):
            added = [f for f in new["metadata"].get("finalizers", [])
                     if f not in old_meta.get("finalizers", [])]
            if added:
                raise errors.invalid(rtype.group, rtype.kind, name, [FieldError(
                    fielderrors.FORBIDDEN, "metadata.finalizers", detail="no new finalizers can "
                    "be added if the object is being deleted, found new finalizers "
                    "[]string{" + ", ".join(fielderrors.go_quote(f) for f in added) + "}",
                )])
        if subresource != "status" and stamping.spec_changed(
                new, existing, status_is_separate=rtype.has_status):
            new["metadata"]["generation"] = int(old_meta.get("generation", 0)) + 1
        if new == existing:
            return _Result(existing, warnings=warnings)  # no-op: nothing stored, no event
        if req.dry_run:
            return _Result(new, warnings=warnings)
        new["metadata"]["resourceVersion"] = str(self.store.next_rv())
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(rtype.storage_key, new, existing)
        else:
            self.store.put(rtype.storage_key, new, existing)
            self._after_write(rtype, new)
        return _Result(new, warnings=warnings)


def _load_apply(body: bytes) -> dict[str, Any]:
    try:
        applied = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc
    if not isinstance(applied, dict):
        raise errors.bad_request("the applied configuration must be an object")
    return applied
