"""Status conditions as the Kubernetes API conventions define them (pure functions).

A condition is ``{type, status: "True"|"False"|"Unknown", reason (CamelCase), message,
lastTransitionTime, observedGeneration}``; ``lastTransitionTime`` changes only when
``status`` changes (API conventions, "Typical status properties"). The types used follow
kstatus (sigs.k8s.io/cli-utils): ``Ready`` for success, ``Reconciling`` while work is in
progress and ``Stalled`` for a terminal error, so Flux and Argo CD health checks and
``kubectl wait --for=condition=Ready`` work unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..reasons import ConditionType


@dataclass(frozen=True, slots=True)
class Condition:
    """One desired condition, before its transition time is decided."""

    type: str
    status: bool
    reason: str
    message: str = ""


def not_ready(reason: str, message: str, *, stalled: bool) -> list[Condition]:
    """``Ready=False`` with ``reason``, then ``Stalled=True`` when waiting cannot fix it
    (``stalled``), else ``Reconciling=True`` (work is still going on)."""
    second = ConditionType.STALLED if stalled else ConditionType.RECONCILING
    return [Condition(ConditionType.READY, False, reason, message),
            Condition(second, True, reason, message)]


def rfc3339(moment: datetime) -> str:
    """``2026-01-02T03:04:05Z``: the timestamp form Kubernetes uses (RFC 3339, UTC, seconds)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_conditions(
    previous: list[dict[str, Any]] | None,
    desired: list[Condition],
    *,
    generation: int | None,
    now: datetime,
) -> list[dict[str, Any]]:
    """The conditions to write: ``desired`` in order, keeping each previous
    ``lastTransitionTime`` whose status did not change. Conditions not desired are dropped.
    """
    before = {c.get("type"): c for c in previous or []}
    merged = []
    for cond in desired:
        status = "True" if cond.status else "False"
        old = before.get(cond.type)
        since = old.get("lastTransitionTime") if old and old.get("status") == status else None
        item: dict[str, Any] = {
            # Plain strings on the wire, whatever enum the caller used.
            "type": str(cond.type),
            "status": status,
            "reason": str(cond.reason),
            "message": cond.message[:32768],
            "lastTransitionTime": since or rfc3339(now),
        }
        if generation is not None:
            item["observedGeneration"] = generation
        merged.append(item)
    return merged
