"""Storage keys of the resources whose strategies the generic handlers special-case."""

from __future__ import annotations

from ..store import StorageKey

NAMESPACES: StorageKey = ("", "namespaces")
CRDS: StorageKey = ("apiextensions.k8s.io", "customresourcedefinitions")
