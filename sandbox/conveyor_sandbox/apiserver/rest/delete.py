"""Delete and deletecollection: preconditions, finalizers (``deletionTimestamp``), orphaning,
and the terminating phase of namespaces and CRDs."""

from __future__ import annotations

import copy
import json
from typing import Any

import aiohttp.web

from .. import crds, errors, stamping
from ..registry import ResourceType
from ..store import StorageKey
from .base import ApiBase
from .kinds import CRDS, NAMESPACES
from .request import ApiRequest, _Result, json_response

_UNDELETABLE_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})


class DeleteMixin(ApiBase):
    """Delete one object or a collection."""

    def _delete(self, req: ApiRequest, rtype: ResourceType, namespace: str,
                name: str) -> _Result:
        existing = self._get(rtype, namespace, name)
        options = _delete_options(req)
        pre = options.get("preconditions") or {}
        meta = existing["metadata"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(rtype.group, rtype.plural, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, UID "
                                  f"in object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(rtype.group, rtype.plural, name,
                                  f"Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{meta.get('resourceVersion')}")
        if rtype.storage_key == NAMESPACES and name in _UNDELETABLE_NAMESPACES:
            raise errors.forbidden("", "namespaces", name, "this namespace may not be deleted")
        if req.dry_run:
            pending = bool(meta.get("finalizers"))
            return _Result(stamping.mark_deleting(existing) if pending else existing,
                           status=202 if pending else 200)
        if options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents"):
            self._orphan_dependents(meta.get("uid", ""))
        final = self.delete_object(rtype.storage_key, existing)
        gone = self.store.get(rtype.storage_key, namespace, name) is None
        return _Result(final, status=200 if gone else 202)

    def delete_object(self, storage: StorageKey, existing: dict[str, Any]) -> dict[str, Any]:
        """Delete a stored object (API DELETE, garbage collection, namespace/CRD cleanup).

        Returns its last state: marked for deletion if finalizers (or content) hold it.
        """
        meta = existing["metadata"]
        if storage == NAMESPACES:
            return self._delete_namespace(existing)
        if storage == CRDS:
            return self._delete_crd(existing)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return existing
            marked = stamping.mark_deleting(existing)
            marked["metadata"]["resourceVersion"] = str(self.store.next_rv())
            self.store.put(storage, marked, existing)
            return marked
        final = copy.deepcopy(existing)
        final["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self._remove(storage, final, existing)
        return final

    def _delete_namespace(self, existing: dict[str, Any]) -> dict[str, Any]:
        name = existing["metadata"]["name"]
        if not existing["metadata"].get("deletionTimestamp"):
            marked = stamping.mark_deleting(existing)
            marked["status"] = {"phase": "Terminating"}
            marked["metadata"]["resourceVersion"] = str(self.store.next_rv())
            self.store.put(NAMESPACES, marked, existing)
            existing = marked
        for storage, obj in list(self.store.items()):
            if obj["metadata"].get("namespace") == name:
                self.delete_object(storage, obj)
        return self._finish_namespace(name) or existing

    def _delete_crd(self, existing: dict[str, Any]) -> dict[str, Any]:
        meta = existing["metadata"]
        if not meta.get("deletionTimestamp"):
            marked = crds.with_status(stamping.mark_deleting(existing), existing)
            marked["metadata"]["resourceVersion"] = str(self.store.next_rv())
            self.store.put(CRDS, marked, existing)
            existing = marked
        rtype = self._crd_type(existing)
        if rtype is not None:
            for obj in list(self.store.list(rtype.storage_key)):
                self.delete_object(rtype.storage_key, obj)
        return self._finish_crd(existing["metadata"]["name"]) or existing

    def _delete_collection(self, req: ApiRequest, rtype: ResourceType, version: str,
                           namespace: str) -> aiohttp.web.Response:
        matches = self._matcher(req, rtype, version, namespace)
        deleted = []
        for obj in self.store.list(rtype.storage_key, namespace or None):
            if matches(obj):
                deleted.append(obj if req.dry_run else self.delete_object(rtype.storage_key, obj))
        return json_response({
            "apiVersion": rtype.api_version(version),
            "kind": rtype.list_kind,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": [self.present(rtype, version, o) for o in deleted],
        })


def _delete_options(req: ApiRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if req.body.strip():
        try:
            parsed = json.loads(req.body)
        except ValueError as exc:
            raise errors.bad_request(f"invalid DeleteOptions: {exc}") from exc
        if isinstance(parsed, dict):
            options.update(parsed)
    if req.query.get("propagationPolicy"):
        options["propagationPolicy"] = req.query["propagationPolicy"]
    return options
