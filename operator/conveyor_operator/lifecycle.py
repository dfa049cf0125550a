"""What an Execution's lifecycle fields ask of its run (pure, tested as a table).

``spec.suspend``, ``spec.cancel`` and ``spec.retry`` are declarative, so applying the same
manifest twice is one action (the GitOps rule): each is compared with the run's recorded
state in PostgreSQL, never with the previous spec.

* ``cancel: true`` cancels an open run (once it is final there is nothing to do).
* ``retry: N`` asks that the run has been retried from its failed step N times: while it is
  ``Failed`` or ``Cancelled``, not to be cancelled, and retried fewer than N times, it is
  retried once more (the count lives in the engine, so a second identical apply, an
  operator restart or a replayed watch event finds it done). Raising N by one retries a
  failed run once; the CRD refuses lowering it.
* ``suspend`` is mirrored onto an open run: no task starts while it is true (Kubernetes
  Job's ``spec.suspend``); a retry starts suspended when it is true.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from conveyor_engine.phases import EXECUTION_OPEN, EXECUTION_RETRYABLE


class Action(StrEnum):
    """One change to make to the run."""

    CANCEL = "Cancel"
    RETRY = "Retry"
    SUSPEND = "Suspend"
    RESUME = "Resume"


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The lifecycle fields of an Execution's spec."""

    suspend: bool = False
    cancel: bool = False
    retry: int = 0


@dataclass(frozen=True, slots=True)
class RunFacts:
    """What the engine recorded about the run: its phase, whether it is suspended, how
    many times it was retried."""

    phase: str
    suspended: bool = False
    retries: int = 0


def lifecycle_actions(spec: Lifecycle, run: RunFacts) -> list[Action]:
    """The actions that bring ``run`` in line with ``spec``, in order; empty when it is.

    Cancelling wins over everything; a retry of a final run carries the spec's suspend
    with it (so it is one action); otherwise an open run's suspension follows the spec.
    """
    is_open = run.phase in EXECUTION_OPEN
    if spec.cancel:
        return [Action.CANCEL] if is_open else []
    if run.phase in EXECUTION_RETRYABLE and spec.retry > run.retries:
        return [Action.RETRY]
    if is_open and spec.suspend != run.suspended:
        return [Action.SUSPEND if spec.suspend else Action.RESUME]
    return []
