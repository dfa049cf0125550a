"""Concurrency groups of executions: who is admitted, who waits, who is refused or replaced.

Pure decisions over plain values (no I/O), tested as tables
(``tests/unit/test_concurrency.py``); the SQL that carries them out is in
:mod:`conveyor_engine.store.admission`.

An execution may belong to one **concurrency group** (:class:`Concurrency`): a string, a
limit and a policy. A Workflow's ``spec.concurrency`` gives one to each of its runs (the
group is the workflow's name plus the value of its ``key`` expression); a caller of
``Engine.submit(..., concurrency=...)`` may give one directly (how a Schedule's
``concurrencyPolicy`` uses the same mechanism). At submission, under a PostgreSQL
transaction-level advisory lock on the group, the open runs of the group are read and:

* ``Queue``: the new run joins the group's queue; then the oldest queued runs are admitted
  while fewer than ``limit`` admitted runs are open (:func:`promotions`). So a run is
  admitted at once only when the group has room and nobody queued before it: first come,
  first served per group. A queued run is ``Pending`` with its tasks held (not ``Ready``);
  when an admitted run of its group finishes or is cancelled, the next one is admitted in
  the same transaction.
* ``Forbid``: when the group already holds ``limit`` open runs (admitted or queued), the
  new run fails at once (reason :data:`FORBIDDEN`); otherwise as ``Queue``.
* ``Replace``: the oldest open runs of the group are cancelled (reason :data:`REPLACED`)
  until the new run fits; then as ``Queue``, so it is admitted at once.

Sources: Kubernetes CronJob ``concurrencyPolicy`` (Allow/Forbid/Replace), Hatchet's
concurrency strategies (``GROUP_ROUND_ROBIN`` queues per key, ``CANCEL_NEWEST`` refuses the
new run, ``CANCEL_IN_PROGRESS`` cancels the running one), Argo Workflows' semaphores (a run
waiting for one says so in its status).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

#: Reason recorded on an execution waiting in its group's queue (and on its status).
LIMITED = "ConcurrencyLimit"
#: Reason of a run refused by ``policy: Forbid``.
FORBIDDEN = "ConcurrencyForbidden"
#: Reason of a run cancelled by a newer one under ``policy: Replace``.
REPLACED = "ConcurrencyReplaced"

#: Longest group name; :func:`group_name` cuts a longer one (keeping it unique by a hash).
MAX_GROUP_CHARS = 512


class Policy(StrEnum):
    """What a run beyond its group's limit does (``spec.concurrency.policy``)."""

    QUEUE = "Queue"
    FORBID = "Forbid"
    REPLACE = "Replace"


@dataclass(frozen=True, slots=True)
class Concurrency:
    """The concurrency group an execution joins at submission.

    ``group``: any non-empty string naming the group (runs with equal groups share the
    limit, whatever their workflow); ``limit``: admitted runs at a time, at least 1;
    ``policy``: see :class:`Policy`. Raises ``ValueError`` naming the field when invalid.
    """

    group: str
    limit: int = 1
    policy: Policy = Policy.QUEUE

    def __post_init__(self) -> None:
        if not isinstance(self.group, str) or not self.group:
            raise ValueError("concurrency.group: must be a non-empty string")
        if len(self.group) > MAX_GROUP_CHARS:
            raise ValueError(f"concurrency.group: at most {MAX_GROUP_CHARS} characters; "
                             f"this one has {len(self.group)}")
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ValueError(f"concurrency.limit: must be an integer >= 1, not {self.limit!r}")
        object.__setattr__(self, "policy", Policy(self.policy))


@dataclass(frozen=True, slots=True)
class OpenRun:
    """An open (``Pending``/``Running``) execution of a group, as read under its lock:
    its id, whether it is still queued, its place in arrival order (``seq``) and the limit
    it was submitted with."""

    execution_id: str
    queued: bool
    seq: int
    limit: int = 1


@dataclass(frozen=True, slots=True)
class Admission:
    """What a submission does to its group before the new run joins the queue.

    ``forbidden``: the message the new run fails with (None: it joins the queue);
    ``cancel``: ids of open runs to cancel first (``Replace``), oldest first.
    """

    forbidden: str | None = None
    cancel: tuple[str, ...] = ()


def admit(concurrency: Concurrency, open_runs: Sequence[OpenRun]) -> Admission:
    """Decide a submission to ``concurrency``'s group holding ``open_runs``.

    ``Queue``: nothing to do (the run queues; :func:`promotions` admits it when it may).
    ``Forbid``: refused when ``len(open_runs) >= limit`` (queued runs count: they will run).
    ``Replace``: the oldest ``len(open_runs) - limit + 1`` runs (by ``seq``) are cancelled.
    """
    count = len(open_runs)
    if concurrency.policy == Policy.FORBID and count >= concurrency.limit:
        return Admission(forbidden=(
            f"{FORBIDDEN}: concurrency group {concurrency.group!r} already has {count} open "
            f"run(s) (limit {concurrency.limit}) and its policy is Forbid"))
    if concurrency.policy == Policy.REPLACE and count >= concurrency.limit:
        oldest = sorted(open_runs, key=lambda r: r.seq)[: count - concurrency.limit + 1]
        return Admission(cancel=tuple(r.execution_id for r in oldest))
    return Admission()


def promotions(open_runs: Sequence[OpenRun]) -> list[str]:
    """Ids of queued runs to admit now, oldest first.

    The queue is served strictly in arrival order (``seq``): its head is admitted while the
    admitted runs are fewer than the head's own ``limit`` (the limit it was submitted with,
    so a workflow edit applies to runs submitted after it). A head that must wait blocks
    the runs behind it: first come, first served.
    """
    admitted = sum(1 for r in open_runs if not r.queued)
    chosen = []
    for run in sorted((r for r in open_runs if r.queued), key=lambda r: r.seq):
        if admitted >= run.limit:
            break
        chosen.append(run.execution_id)
        admitted += 1
    return chosen


def waiting_message(group: str, *, admitted: int, ahead: int, limit: int,
                    suspended: int = 0) -> str:
    """The status message of a queued run: ``waiting for N earlier run(s) of key K``.

    ``admitted``: runs of the group open and admitted; ``ahead``: runs queued before this
    one; ``limit``: this run's limit. N counts both: every run that goes first.
    ``suspended``: how many admitted runs are suspended; they keep their place (as a
    suspended Job keeps its name), so the message says that resuming or cancelling them is
    what lets the queue move, instead of leaving a stalled group unexplained.
    """
    message = (f"waiting for {admitted + ahead} earlier run(s) of key {group!r} "
               f"({admitted} running, {ahead} queued ahead; limit {limit})")
    if suspended:
        message += (f"; {suspended} of the running are suspended and hold their place "
                    f"until resumed or cancelled")
    return message


def replaced_message(group: str) -> str:
    """The message of a run cancelled by a newer one of its group (``Replace``)."""
    return f"{REPLACED}: replaced by a newer run of concurrency group {group!r}"


def group_name(workflow: str, key: str | None) -> str:
    """The group of a workflow's run: ``workflow`` alone, or ``workflow[key]`` when its
    ``spec.concurrency.key`` gave ``key``. A name longer than :data:`MAX_GROUP_CHARS` is
    cut and ends with ``#`` and 16 hex digits of its SHA-256, so long keys stay distinct."""
    name = workflow if key is None else f"{workflow}[{key}]"
    if len(name) <= MAX_GROUP_CHARS:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
    return f"{name[: MAX_GROUP_CHARS - 17]}#{digest}"
