"""How many workers a pool should have: pure functions of its load, policy and the time.

desired = ceil((queued + in flight + timers due soon) / target per replica), clamped to
[minReplicas, maxReplicas], never below the workers needed to hold the tasks in flight,
then stabilised the way the Horizontal Pod Autoscaler does it (Kubernetes docs, "Stabilization
window"): scaling up goes to the *lowest* recommendation seen within the scale-up window,
scaling down to the *highest* within the scale-down window, so a brief dip or spike does
not make the pool flap. A pool at zero with work waiting is activated at once, and so is
one that a Workflow waits on to advertise its task types (it keeps one replica meanwhile):
a pool at zero that never advertised would otherwise never start a worker to do it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Policy:
    """A pool's scaling bounds. Windows are in seconds."""

    min_replicas: int
    max_replicas: int
    target_per_replica: int
    concurrency: int
    scale_up_window: float = 0.0
    scale_down_window: float = 60.0


@dataclass(frozen=True, slots=True)
class Load:
    """Work of a pool: ``queued`` (not yet claimed), ``in_flight`` (claimed, not acked) and
    ``timers_due`` (durable timers falling due soon, which need a worker to fire them);
    ``awaiting_catalogue``: a Workflow waits for the pool's workers to advertise a task type
    (issue 11 item 2), which needs at least one worker."""

    queued: int
    in_flight: int
    timers_due: int = 0
    awaiting_catalogue: bool = False

    @property
    def outstanding(self) -> int:
        """All the work that needs a worker now or soon."""
        return self.queued + self.in_flight + self.timers_due


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A raw recommendation made at ``at`` (seconds, any monotonic clock)."""

    at: float
    replicas: int


@dataclass(frozen=True, slots=True)
class Decision:
    """The replicas to run now, why, and the recommendations to remember for next time."""

    replicas: int
    recommended: int
    reason: str
    history: tuple[Recommendation, ...]


def recommend(policy: Policy, load: Load) -> int:
    """The raw replica count for ``load``: the formula above, clamped to the bounds."""
    wanted = math.ceil(load.outstanding / policy.target_per_replica)
    holding = math.ceil(load.in_flight / policy.concurrency)
    advertising = 1 if load.awaiting_catalogue else 0
    return min(policy.max_replicas, max(policy.min_replicas, wanted, holding, advertising))


def decide(
    policy: Policy, load: Load, *, current: int, history: tuple[Recommendation, ...], now: float
) -> Decision:
    """Replicas to run given the ``current`` count and earlier recommendations.

    ``history`` is what the previous :class:`Decision` returned; recommendations older than
    both windows are dropped.
    """
    raw = recommend(policy, load)
    keep = max(policy.scale_up_window, policy.scale_down_window)
    recent = (*(r for r in history if now - r.at <= keep), Recommendation(now, raw))
    replicas = current
    if raw > current:
        window = [r.replicas for r in recent if now - r.at <= policy.scale_up_window]
        replicas = max(current, min(window))
        if current == 0 and (load.outstanding > 0 or load.awaiting_catalogue):
            replicas = max(replicas, 1)  # activation: a sleeping pool wakes up at once
    elif raw < current:
        window = [r.replicas for r in recent if now - r.at <= policy.scale_down_window]
        replicas = min(current, max(window))
    replicas = min(policy.max_replicas, max(policy.min_replicas, replicas))
    reason = (
        f"{load.queued} queued + {load.in_flight} in flight + {load.timers_due} timers due, "
        f"target {policy.target_per_replica} per replica: recommend {raw}"
    )
    if load.awaiting_catalogue:
        reason += ", a Workflow waits for its task types"
    if replicas != current:
        reason += f", scale {current} -> {replicas}"
    elif raw != current:
        window = policy.scale_up_window if raw > current else policy.scale_down_window
        reason += f", hold {current} (stabilization window {window:g}s)"
    return Decision(replicas, raw, reason, recent)
