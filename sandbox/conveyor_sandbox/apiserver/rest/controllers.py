"""What the cluster's controllers do after a removal: garbage collection of dependents,
removal of emptied terminating namespaces, and CRD cleanup once instances are gone."""

from __future__ import annotations

import copy
from typing import Any

from .. import crds
from ..registry import ResourceType
from ..store import StorageKey
from .base import ApiBase
from .kinds import CRDS, NAMESPACES


class ControllersMixin(ApiBase):
    """The reactions of the garbage collector, namespace and CRD controllers."""

    def _finish_namespace(self, name: str) -> dict[str, Any] | None:
        """Remove a terminating namespace once nothing is left in it (namespace controller)."""
        ns = self.store.get(NAMESPACES, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if any(obj["metadata"].get("namespace") == name for _, obj in self.store.items()):
            return None
        final = copy.deepcopy(ns)
        final["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self._remove(NAMESPACES, final, ns)
        return final

    def _crd_type(self, crd: dict[str, Any]) -> ResourceType | None:
        spec = crd.get("spec") or {}
        return self.registry.get(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))

    def _finish_crd(self, crd_name: str) -> dict[str, Any] | None:
        """Drop the cleanup finalizer once the CRD's instances are gone (its controller)."""
        crd = self.store.get(CRDS, "", crd_name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return None
        rtype = self._crd_type(crd)
        if rtype is not None and self.store.count(rtype.storage_key):
            return None
        updated = copy.deepcopy(crd)
        finalizers = [f for f in updated["metadata"].get("finalizers", [])
                      if f != crds.CLEANUP_FINALIZER]
        updated["metadata"]["finalizers"] = finalizers
        if not finalizers:
            del updated["metadata"]["finalizers"]
        updated["metadata"]["resourceVersion"] = str(self.store.next_rv())
        if finalizers:
            self.store.put(CRDS, updated, crd)
        else:
            self._remove(CRDS, updated, crd)
        return updated

    def _remove(self, storage: StorageKey, final: dict[str, Any], old: dict[str, Any]) -> None:
        """Remove for good, then let the "controllers" react: GC, namespace, CRD cleanup."""
        self.store.remove(storage, final, old)
        meta = final["metadata"]
        if storage == CRDS:
            spec = final.get("spec") or {}
            self.registry.remove(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        self._collect_garbage(meta.get("uid", ""))
        if meta.get("namespace"):
            self._finish_namespace(meta["namespace"])
        rtype = self.registry.get(*storage)
        if rtype is not None and rtype.is_custom:
            self._finish_crd(rtype.crd_name)

    def _collect_garbage(self, owner_uid: str) -> None:
        """Background cascading deletion (the garbage collector): dependents of a removed owner
        are deleted when no owner of theirs is left; dangling references are dropped."""
        if not owner_uid:
            return
        dependents = [(s, o) for s, o in self.store.items()
                      if any(r.get("uid") == owner_uid
                             for r in o["metadata"].get("ownerReferences") or [])]
        if not dependents:
            return
        live = {o["metadata"].get("uid") for _, o in self.store.items()}
        for storage, obj in dependents:
            current = self.store.get(storage, obj["metadata"].get("namespace", ""),
                                     obj["metadata"]["name"])
            if current is None:
                continue
            refs = current["metadata"].get("ownerReferences") or []
            if any(r.get("uid") in live for r in refs):
                self._set_owner_refs(storage, current, [r for r in refs if r.get("uid") in live])
            else:
                self.delete_object(storage, current)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for storage, obj in list(self.store.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == owner_uid for r in refs):
                self._set_owner_refs(storage, obj, [r for r in refs if r.get("uid") != owner_uid])

    def _set_owner_refs(self, storage: StorageKey, obj: dict[str, Any],
                        refs: list[dict[str, Any]]) -> None:
        updated = copy.deepcopy(obj)
        if refs:
            updated["metadata"]["ownerReferences"] = refs
        else:
            updated["metadata"].pop("ownerReferences", None)
        updated["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.put(storage, updated, obj)
