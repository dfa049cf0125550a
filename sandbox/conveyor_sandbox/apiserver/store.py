"""In-memory storage: objects, the global resourceVersion, the change log and watchers.

Like etcd behind the API server, the store knows nothing about API semantics: it keeps the
current object per ``(storage resource, namespace, name)``, stamps nothing but hands out
increasing revisions (:meth:`Store.next_rv`; one counter for all resources, as etcd's), and
records every change as a :class:`Change` that watchers receive. Watches can resume from any
revision still in the bounded change log; older ones get 410 Expired, as from the real watch
cache ("too old resource version").

Stored dicts are never mutated after :meth:`Store.put`: writers build new dicts (copy on write),
so responses and watch events can share them safely.

With ``keep_history`` every stored version of every object is also kept, in order, so tests
can assert on what an object went through (:meth:`Store.history`), not only where it ended.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
from collections.abc import Iterator
from typing import Any

from . import errors

StorageKey = tuple[str, str]  # (group, plural) of the resource the objects are stored under


@dataclasses.dataclass(frozen=True)
class Change:
    """One committed change: ``type`` is ADDED, MODIFIED or DELETED; ``old`` is the previous
    state (``None`` for ADDED), used to turn selector transitions into ADDED/DELETED events."""

    rv: int
    storage: StorageKey
    type: str
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Watcher:
    """A subscription to the changes of one storage resource; ``None`` in the queue ends it."""

    def __init__(self, storage: StorageKey) -> None:
        self.storage = storage
        self.queue: asyncio.Queue[Change | None] = asyncio.Queue()


class Store:
    """The object storage. All methods are synchronous: one asyncio loop, no locks needed."""

    def __init__(self, *, change_log_size: int = 50_000, keep_history: bool = True) -> None:
        # Start above zero: "0" means "any version" to the API, and real clusters are never new.
        self._rv = 100
        self._objects: dict[StorageKey, dict[tuple[str, str], dict[str, Any]]] = (
            collections.defaultdict(dict)
        )
        self._log: collections.deque[Change] = collections.deque(maxlen=change_log_size)
        self._compacted_rv = self._rv  # changes up to this revision are no longer in the log
        self._watchers: set[Watcher] = set()
        # (storage, namespace, name) -> every version put, oldest first; None: not kept.
        self._history: dict[tuple[StorageKey, str, str], list[dict[str, Any]]] | None = (
            collections.defaultdict(list) if keep_history else None
        )

    @property
    def rv(self) -> int:
        """The latest revision handed out (the list resourceVersion)."""
        return self._rv

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def get(self, storage: StorageKey, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects[storage].get((namespace, name))

    def list(self, storage: StorageKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """Objects ordered by (namespace, name), as etcd returns keys."""
        bucket = self._objects[storage]
        keys = sorted(k for k in bucket if namespace is None or k[0] == namespace)
        return [bucket[key] for key in keys]

    def items(self) -> Iterator[tuple[StorageKey, dict[str, Any]]]:
        """Every stored object of every resource (for garbage collection and namespaces)."""
        for storage, bucket in list(self._objects.items()):
            for obj in list(bucket.values()):
                yield storage, obj

    def count(self, storage: StorageKey, namespace: str | None = None) -> int:
        return sum(1 for k in self._objects[storage] if namespace is None or k[0] == namespace)

    def put(self, storage: StorageKey, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Store a created (``old is None``) or updated object already stamped with a new rv."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        self._objects[storage][key] = obj
        self._record(Change(int(meta["resourceVersion"]), storage, "MODIFIED" if old else "ADDED",
                            obj, old))
        if self._history is not None:
            self._history[(storage, *key)].append(obj)

    def history(self, storage: StorageKey, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every version of the object stored under ``(namespace, name)``, oldest first.

        A version is the object as each create or update stored it (stored dicts are never
        mutated, so these are the versions as they were). Deletions add none; an object
        created again under the same name continues its list. Empty for a name never
        stored; ``namespace`` is ``""`` for cluster-scoped objects. Raises ``RuntimeError``
        when the store was made with ``keep_history=False``.
        """
        if self._history is None:
            raise RuntimeError("this store keeps no history (keep_history=False)")
        return list(self._history.get((storage, namespace, name), ()))

    def remove(self, storage: StorageKey, obj: dict[str, Any], old: dict[str, Any]) -> None:
        """Remove an object; ``obj`` is its final state stamped with the deletion's rv."""
        meta = obj["metadata"]
        self._objects[storage].pop((meta.get("namespace", ""), meta["name"]), None)
        self._record(Change(int(meta["resourceVersion"]), storage, "DELETED", obj, old))

    def _record(self, change: Change) -> None:
        if len(self._log) == self._log.maxlen:
            self._compacted_rv = self._log[0].rv
        self._log.append(change)
        for watcher in list(self._watchers):
            if watcher.storage == change.storage:
                watcher.queue.put_nowait(change)

    def watch(self, storage: StorageKey, since_rv: int | None) -> tuple[Watcher, list[Change]]:
        """Subscribe; with ``since_rv``, also return the logged changes after it (the backlog).

        Raises 410 Expired when ``since_rv`` is older than the retained log. Registration and
        the backlog snapshot happen in one synchronous step, so no change falls in between.
        """
        backlog: list[Change] = []
        if since_rv is not None:
            if since_rv < self._compacted_rv:
                raise errors.gone(f"too old resource version: {since_rv} ({self._compacted_rv})")
            backlog = [c for c in self._log if c.rv > since_rv and c.storage == storage]
        watcher = Watcher(storage)
        self._watchers.add(watcher)
        return watcher, backlog

    def unwatch(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def close_watches(self) -> None:
        """End every watch stream (server shutdown): clients reconnect or stop."""
        for watcher in list(self._watchers):
            watcher.queue.put_nowait(None)
        self._watchers.clear()
