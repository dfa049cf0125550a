"""What a pool's catalogue means for the operator (pure): whether the pool is *settled*, so
that a task type it does not advertise is really missing, and how the catalogue is shown
on the WorkerPool's status (issue 11 item 2).

The settled rule: a pool is settled when its Deployment is fully rolled out (the
Deployment controller has seen its latest spec, ``observedGeneration >= generation``, and
every pod it runs is of that spec and there are exactly ``spec.replicas`` of them,
``updatedReplicas == replicas == spec.replicas``: the rollout-complete test of ``kubectl
rollout status``), at least one worker is ready, and at least as many workers advertise as
are ready. Otherwise (a pool at zero, an image rolling out, workers still starting, a
worker that has not advertised yet) a missing type may yet appear, so a Workflow using it
waits instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

#: Most task types shown on a WorkerPool's status (the CRD's ``maxItems``).
MAX_STATUS_TYPES = 64
#: Longest ``status.taskTypeNames`` (the CRD's ``maxLength``).
MAX_NAMES_LENGTH = 1024


@dataclass(frozen=True, slots=True)
class Rollout:
    """A Deployment's rollout as its object says: ``replicas`` (``spec.replicas``),
    ``current`` (``status.replicas``: pods it runs), ``updated``
    (``status.updatedReplicas``), ``ready`` (``status.readyReplicas``), its
    ``metadata.generation`` and ``status.observedGeneration``."""

    replicas: int
    current: int
    updated: int
    ready: int
    generation: int | None = None
    observed_generation: int | None = None

    @property
    def complete(self) -> bool:
        """The rollout is done (``kubectl rollout status``'s test, without availability)."""
        seen = (self.generation is None or (self.observed_generation or 0) >= self.generation)
        return seen and self.updated == self.replicas and self.current == self.replicas


def settled(rollout: Rollout | None, advertisers: int) -> bool:
    """Whether the pool is settled (see the module docstring): ``rollout`` of its
    Deployment (None when there is none) and ``advertisers``, the workers advertising now."""
    if rollout is None or rollout.replicas <= 0 or not rollout.complete:
        return False
    return rollout.ready > 0 and advertisers >= rollout.ready


class Described(Protocol):
    """A served task type (:class:`conveyor_engine.api.AdvertisedType`)."""

    @property
    def name(self) -> str: ...

    @property
    def package(self) -> str | None: ...

    @property
    def version(self) -> str | None: ...


def status_task_types(types: Iterable[Described]) -> tuple[list[dict[str, str]], str]:
    """``status.taskTypes`` (name, package, version; at most :data:`MAX_STATUS_TYPES`, by
    name) and ``status.taskTypeNames`` (the names, comma-separated, cut with ``,...`` to
    :data:`MAX_NAMES_LENGTH`)."""
    items = []
    for served in sorted(types, key=lambda t: t.name)[:MAX_STATUS_TYPES]:
        item = {"name": served.name}
        if served.package:
            item["package"] = served.package[:253]
        if served.version:
            item["version"] = served.version[:128]
        items.append(item)
    names = ",".join(item["name"] for item in items)
    if len(names) > MAX_NAMES_LENGTH:
        names = names[: MAX_NAMES_LENGTH - 4].rsplit(",", 1)[0] + ",..."
    return items, names
