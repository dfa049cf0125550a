"""Which task types a process has, where each came from, and loading them from entry points.

Every task type, the built-in ``http``, ``set`` and ``wait`` included, is an entry point in
the group ``conveyor.tasktypes`` (:data:`ENTRY_POINT_GROUP`) of the package that provides it;
the entry point names a :class:`~.base.TaskType` subclass or instance (what ``@task_type``
returns is one). :meth:`Registry.load_entry_points` loads them all: a module that fails to
import, an object that is not a task type, or two providers of one name stop the load with
:class:`TaskTypeLoadError`, whose message names the entry point, the module and the error.

:meth:`Registry.describe` lists each type with its params' JSON Schema and its provider's
distribution and version: what a pool will advertise (issue 11 item 2).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from .base import TaskType
from .validation import check_type_name

#: The entry-point group task types are published in (``[project.entry-points.
#: "conveyor.tasktypes"]`` in a package's ``pyproject.toml``).
ENTRY_POINT_GROUP = "conveyor.tasktypes"


@dataclass(frozen=True)
class Provider:
    """Where a task type came from: its distribution (``conveyor-example-tasks``) and version,
    and the entry point (``checksum = conveyor_example_tasks.checksum:checksum``); for a type
    registered in code, ``distribution`` is None and ``entry_point`` names the object."""

    entry_point: str
    distribution: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        where = f"{self.distribution} {self.version}" if self.distribution else "code"
        return f"entry point '{self.entry_point}' ({where})"


@dataclass(frozen=True)
class Registered:
    """One registered task type and its provider."""

    task_type: TaskType
    provider: Provider

    def describe(self) -> dict[str, Any]:
        """``{"name", "paramsSchema", "outputsSchema", "package", "version"}``: JSON-ready;
        the schemas are pydantic's JSON Schema (by alias), ``outputsSchema`` None when the
        type declares no outputs model."""
        outputs = self.task_type.Outputs
        return {
            "name": self.task_type.name,
            "paramsSchema": self.task_type.Params.model_json_schema(by_alias=True),
            "outputsSchema": outputs.model_json_schema(by_alias=True) if outputs else None,
            "package": self.provider.distribution,
            "version": self.provider.version,
        }


class TaskTypeLoadError(Exception):
    """A task type could not be loaded or registered; the message says which and why."""


class Registry:
    """Task types by name. Not thread-safe while loading; read-only afterwards."""

    def __init__(self) -> None:
        self._types: dict[str, Registered] = {}

    def register(self, task_type: TaskType | type[TaskType], provider: Provider) -> TaskType:
        """Add ``task_type`` (an instance, or a subclass instantiated here) from ``provider``.

        Raises :class:`TaskTypeLoadError` when it is not a task type, its name is invalid,
        it has no pydantic ``Params``, or another provider already registered the name (the
        message names both providers).
        """
        if isinstance(task_type, type) and issubclass(task_type, TaskType):
            task_type = task_type()
        if not isinstance(task_type, TaskType):
            raise TaskTypeLoadError(f"{provider}: {task_type!r} is not a task type (expected "
                                    f"a function decorated with @task_type or a TaskType)")
        try:
            check_type_name(getattr(task_type, "name", None))
        except ValueError as exc:
            raise TaskTypeLoadError(f"{provider}: {exc}") from None
        params = getattr(task_type, "Params", None)
        if not (isinstance(params, type) and hasattr(params, "model_validate")):
            raise TaskTypeLoadError(f"{provider}: task type {task_type.name!r} has no "
                                    f"pydantic Params model")
        held = self._types.get(task_type.name)
        if held is not None:
            raise TaskTypeLoadError(f"task type {task_type.name!r} is provided twice: by "
                                    f"{held.provider} and by {provider}; uninstall one")
        self._types[task_type.name] = Registered(task_type, provider)
        return task_type

    def load_entry_points(self, entry_points: Iterable[metadata.EntryPoint] | None = None,
                          ) -> list[str]:
        """Load and register every entry point of :data:`ENTRY_POINT_GROUP` (or those
        given); return the names registered, sorted. Raises :class:`TaskTypeLoadError`
        naming the entry point, its module and the error at the first that fails."""
        if entry_points is None:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        names = []
        for ep in sorted(entry_points, key=lambda e: (e.name, e.value)):
            provider = _provider_of(ep)
            try:
                loaded = ep.load()
            except Exception as exc:
                raise TaskTypeLoadError(
                    f"{provider}: importing module {ep.module!r} failed: "
                    f"{type(exc).__name__}: {exc}") from exc
            task_type = self.register(loaded, provider)
            if task_type.name != ep.name:
                del self._types[task_type.name]
                raise TaskTypeLoadError(f"{provider}: the entry point is named {ep.name!r} "
                                        f"but its task type is named {task_type.name!r}; "
                                        f"name the entry point after the type")
            names.append(task_type.name)
        return sorted(names)

    def get(self, name: str) -> TaskType:
        """The task type ``name``; ``KeyError`` when none is registered."""
        return self._types[name].task_type

    def entry(self, name: str) -> Registered:
        """The registration of ``name`` (type and provider); ``KeyError`` when none."""
        return self._types[name]

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._types))

    def __len__(self) -> int:
        return len(self._types)

    def describe(self) -> list[dict[str, Any]]:
        """Every type's :meth:`Registered.describe`, by name."""
        return [self._types[name].describe() for name in sorted(self._types)]


def _provider_of(ep: metadata.EntryPoint) -> Provider:
    dist = getattr(ep, "dist", None)
    return Provider(entry_point=f"{ep.name} = {ep.value}",
                    distribution=dist.metadata["Name"] if dist is not None else None,
                    version=dist.version if dist is not None else None)
