"""The registry of task types: adding a type is one module plus one line in ``_TYPES``."""

from __future__ import annotations

from .base import TaskType
from .http import HttpTask
from .set import SetTask
from .wait import WaitTask

_TYPES: tuple[type[TaskType], ...] = (
    HttpTask,
    SetTask,
    WaitTask,
)

REGISTRY: dict[str, TaskType] = {cls.name: cls() for cls in _TYPES}


def get(name: str) -> TaskType:
    """Return the task type registered as ``name``; ``KeyError`` when there is none."""
    return REGISTRY[name]


def known() -> list[str]:
    """Names of all registered task types, sorted."""
    return sorted(REGISTRY)
