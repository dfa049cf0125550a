"""The task types this process has: every one installed, loaded from entry points.

Built-in and installed types alike come from the entry-point group ``conveyor.tasktypes``
(:mod:`.registry`); the built-in ``http``, ``set`` and ``wait`` are entry points of the
``conveyor`` distribution itself (its ``pyproject.toml``). The registry is loaded on first
use; a worker calls :func:`load` at start so a broken package stops it there, with a
message naming the entry point, the module and the error.
"""

from __future__ import annotations

import threading

from .base import TaskType
from .registry import ENTRY_POINT_GROUP, Registry, TaskTypeLoadError

__all__ = ["ENTRY_POINT_GROUP", "Registry", "TaskType", "TaskTypeLoadError", "get", "known",
           "load", "registry"]

_lock = threading.Lock()
_registry: Registry | None = None


def load() -> Registry:
    """The process's registry, loading every installed entry point on the first call.

    Raises :class:`TaskTypeLoadError` (every call, until the installation is fixed) when an
    entry point fails to load or two provide one name.
    """
    global _registry
    with _lock:  # the compiler may run in threads (Engine.register compiles off the loop)
        if _registry is None:
            loading = Registry()
            loading.load_entry_points()
            _registry = loading
        return _registry


def registry() -> Registry:
    """Alias of :func:`load`, for readers of the registry."""
    return load()


def get(name: str) -> TaskType:
    """Return the task type registered as ``name``; ``KeyError`` when there is none."""
    return load().get(name)


def known() -> list[str]:
    """Names of all registered task types, sorted."""
    return list(load())
