"""What the Deployment controller decides, for the sandbox's kubelet emulation (pure).

Kubernetes' rules (docs, "Deployments"; pkg/controller/deployment ``rolling.go``,
``sync.go``), kept to what a Deployment with one ReplicaSet per pod template needs:

* pods belong to a template: its hash (``pod-template-hash``) names the ReplicaSet; a pod
  whose hash is the current template's is *updated* (new), any other is *old*;
* ``RollingUpdate`` with ``maxSurge`` and ``maxUnavailable`` (numbers or percentages of
  ``spec.replicas``: surge rounded up, unavailable down; both default to 25 %; both 0 gives
  unavailable 1): the new pods grow while all pods stay at most ``replicas + maxSurge``;
  old pods go while the ready pods stay at least ``replicas - maxUnavailable`` and new pods
  that are not ready yet are counted as needing that room (``maxScaledDown = all -
  minAvailable - newUnavailable``); not-ready old pods go first;
* ``Recreate``: every old pod goes first; new pods start once none is left;
* on scale-down among pods of one template, the lowest ``pod-deletion-cost`` goes first,
  the youngest first among equals (the ReplicaSet controller's order);
* status: ``replicas`` (pods that are not terminating), ``updatedReplicas`` (of them, of the
  current template), ``readyReplicas``, ``availableReplicas`` (ready: no
  ``minReadySeconds`` here), ``unavailableReplicas`` (``spec.replicas - available``, at
  least 0), ``observedGeneration``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def template_hash(template: dict[str, Any]) -> str:
    """A short stable hash of a pod template (10 hex characters): equal templates, equal
    hashes, whatever the order of their keys."""
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def _resolve(value: Any, replicas: int, *, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        share = replicas * float(value[:-1]) / 100
        return math.ceil(share) if round_up else math.floor(share)
    return int(value)


@dataclass(frozen=True, slots=True)
class Strategy:
    """A Deployment's ``spec.strategy`` with its bounds resolved to pod counts."""

    recreate: bool = False
    max_surge: int = 1
    max_unavailable: int = 0

    @classmethod
    def of(cls, spec: dict[str, Any]) -> Strategy:
        """The strategy of a Deployment ``spec`` (its ``replicas`` resolve percentages)."""
        strategy = spec.get("strategy") or {}
        if strategy.get("type") == "Recreate":
            return cls(recreate=True)
        replicas = int(spec.get("replicas") or 0)
        rolling = strategy.get("rollingUpdate") or {}
        surge = _resolve(rolling.get("maxSurge", "25%"), replicas, round_up=True)
        unavailable = _resolve(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        return cls(max_surge=surge, max_unavailable=unavailable)


@dataclass(frozen=True, slots=True)
class PodView:
    """One pod as the controller weighs it: ``ready``, its deletion ``cost`` and when it
    was created (``created``, monotonic seconds)."""

    name: str
    ready: bool
    cost: int = 0
    created: float = 0.0


@dataclass(frozen=True, slots=True)
class Step:
    """What to do now: ``start`` new pods of the current template, ``stop`` these pods."""

    start: int = 0
    stop: tuple[str, ...] = ()


def _scale_down_order(pods: Sequence[PodView]) -> list[PodView]:
    """Not ready first, then lowest deletion cost, then youngest."""
    return sorted(pods, key=lambda p: (p.ready, p.cost, -p.created))


def rollout_step(replicas: int, strategy: Strategy, new: Sequence[PodView],
                 old: Sequence[PodView], *, terminating_old: int = 0) -> Step:
    """One step of the controller for a Deployment wanting ``replicas`` pods: ``new`` pods
    are of its current template, ``old`` of earlier ones (neither terminating);
    ``terminating_old`` old pods are still stopping (``Recreate`` waits for them)."""
    if strategy.recreate:
        if old:
            return Step(stop=tuple(p.name for p in old))
        if terminating_old:
            return Step()
        if len(new) > replicas:
            return Step(stop=tuple(p.name for p in _scale_down_order(new)[:len(new) - replicas]))
        return Step(start=replicas - len(new))
    if len(new) > replicas:  # scaled down: extra new pods go (old ones below, all of them)
        extra = _scale_down_order(new)[:len(new) - replicas]
        return Step(stop=tuple(p.name for p in extra) + tuple(p.name for p in old))
    total = len(new) + len(old)
    start = 0
    if len(new) < replicas:
        start = max(0, min(replicas - len(new), replicas + strategy.max_surge - total))
    min_available = replicas - strategy.max_unavailable
    new_unavailable = sum(1 for p in new if not p.ready)
    room = total - min_available - new_unavailable
    stop: list[str] = []
    if room > 0 and old:
        # Old pods that are not ready cost no availability: they go first, up to ``room``.
        for pod in [p for p in _scale_down_order(old) if not p.ready][:room]:
            stop.append(pod.name)
        room -= len(stop)
        ready_total = sum(1 for p in [*new, *old] if p.ready)
        can_go = min(room, ready_total - min_available)
        ready_old = [p for p in _scale_down_order(old) if p.ready]
        stop.extend(p.name for p in ready_old[:max(can_go, 0)])
    return Step(start=start, stop=tuple(stop))


def deployment_status(replicas: int, generation: int, pods: Sequence[tuple[bool, bool]]
                      ) -> dict[str, Any]:
    """A Deployment's ``status`` from its pods that are not terminating, each as
    ``(updated, ready)``."""
    ready = sum(1 for _, r in pods if r)
    return {"replicas": len(pods), "updatedReplicas": sum(1 for u, _ in pods if u),
            "readyReplicas": ready, "availableReplicas": ready,
            "unavailableReplicas": max(replicas - ready, 0),
            "observedGeneration": generation}
