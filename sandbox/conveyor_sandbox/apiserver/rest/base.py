"""The state shared by the resource handlers: registry, store, watch settings."""

from __future__ import annotations

from ..registry import Registry
from ..store import Store


class ApiBase:
    """What every part of :class:`.ResourceApi` works on: the registry and the store."""

    def __init__(self, registry: Registry, store: Store, *, bookmark_interval: float = 5.0):
        self.registry = registry
        self.store = store
        self.bookmark_interval = bookmark_interval
