"""What the operator's probes answer: pure decisions over its state (no I/O).

``/healthz`` (liveness) fails only for what a restart cures: the operator started leading
but kopf's startup never finished, or a watch went silent for longer than the stall
threshold (a zombie: the process is alive but sees no changes). A standby is alive.
``/readyz`` (readiness) additionally fails while a problem is reported (e.g. installed
CRDs that no longer match, see :mod:`conveyor_operator.crdwatch`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Role(StrEnum):
    """Where the process is in its life."""

    STARTING = "starting"  # before leader election or kopf's startup handlers
    STANDBY = "standby"  # waiting for the Lease
    LEADING = "leading"  # holds the Lease and reconciles


@dataclass
class OperatorState:
    """Mutable state the probes read: role, whether kopf's startup finished, the monotonic
    time of the last sign of life of each watch (resource plural -> seconds), problems."""

    role: Role = Role.STARTING
    started: bool = False
    watches: dict[str, float] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A probe's answer: ``ok`` (HTTP 200, else 503) and a one-line ``message``."""

    ok: bool
    message: str


def liveness(state: OperatorState, now: float, stall_after: float) -> Verdict:
    """Alive unless a watch has been silent for more than ``stall_after`` seconds (0: never
    checked). A watch never heard from yet counts from when it was registered."""
    if state.role is not Role.LEADING:
        return Verdict(True, state.role.value)
    if not state.started:
        return Verdict(True, "leading, starting")
    if stall_after > 0:
        stalled = stalled_watches(state.watches, now, stall_after)
        if stalled:
            return Verdict(False, "watch stalled: " + ", ".join(
                f"{name} silent for {now - state.watches[name]:.0f}s" for name in stalled))
    return Verdict(True, "leading")


def readiness(state: OperatorState, now: float, stall_after: float) -> Verdict:
    """Ready when alive, started (or a standby) and no problem is reported."""
    alive = liveness(state, now, stall_after)
    if not alive.ok:
        return alive
    if state.role is Role.LEADING and not state.started:
        return Verdict(False, "starting")
    if state.role is Role.STARTING:
        return Verdict(False, "starting")
    if state.problems:
        return Verdict(False, "; ".join(f"{k}: {v}" for k, v in sorted(state.problems.items())))
    return Verdict(True, alive.message)


def stalled_watches(watches: Mapping[str, float], now: float, stall_after: float) -> list[str]:
    """Names of the watches silent for more than ``stall_after`` seconds, sorted."""
    return sorted(name for name, seen in watches.items() if now - seen > stall_after)
