"""Every outcome record a worker commits is built here, from one attempt's outcome.

This is also where secret values are taken out (:func:`redact_outcome`): a record built
here goes to PostgreSQL (attempts, tasks, outputs), the Redis cache and the operator's
status, so nothing after it needs to know about Secrets.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..compiler import CompiledTask, CompiledWorkflow
from ..locks import LOCK_LOST, header_value
from ..progress import Deferred, LostAttempt, SkippedByCondition, Transition, transition_for
from ..redaction import Redactor
from ..store import HeldClaim, OutcomeRecord, TaskRef
from ..tasktypes.base import Failed, Outcome, Succeeded, TaskContext

if TYPE_CHECKING:
    from .context import Job


def outcome_record(
    ref: TaskRef,
    outcome: Outcome | SkippedByCondition | LostAttempt | Deferred,
    *,
    worker: str,
    started: datetime,
    finished: datetime,
    workflow: CompiledWorkflow | None,
    task: CompiledTask | None,
    retries: bool = True,
    claim: int | None = None,
    lease_before: datetime | None = None,
    attempt_base: int = 0,
    rand: Callable[[], float] = random.random,
    locks: int = 0,
    lock_lost: Transition | None = None,
    redactor: Redactor | None = None,
) -> OutcomeRecord:
    """The record of attempt ``ref`` ending with ``outcome`` at ``finished``.

    The task's retry policy decides whether a retryable failure is retried, unless
    ``retries`` is False or ``task`` is None (the task cannot be found: nothing to retry);
    then every failure is final. ``workflow`` and ``task`` give the dependents and the
    downstream tasks the commit needs (empty when unknown). ``claim`` is the fencing token
    of the claim the attempt ran under and ``lease_before`` the lease check of a takeover
    (see :class:`~conveyor_engine.store.OutcomeRecord`). ``attempt_base`` is the attempts
    the task had before its execution's last retry from the failed step: the retry policy
    counts only this round's attempts (``ref.attempt - attempt_base``). Raises what
    :meth:`CompiledTask.backoff` raises for a malformed retry policy.

    The wait before a retry is :meth:`CompiledTask.retry_delay`: the jittered backoff
    (``rand``, floats in ``[0, 1)``, is the jitter's random source), at least a server's
    ``Retry-After`` (``Failed.retry_after``) up to ``maxBackoff``; ``retryOn`` decides
    which failures are retried (:func:`~conveyor_engine.progress.transition_for`).
    ``locks`` is how many locks the attempt held and ``lock_lost`` what it becomes if one
    was taken from it (see :func:`lock_lost_transition`). ``redactor`` (the worker's, built
    from the Secrets it holds) takes secret values out of the outcome first
    (:func:`redact_outcome`).
    """
    if redactor:
        outcome = redact_outcome(outcome, redactor)
    retry_on = None
    if retries and task is not None:
        retry_after = outcome.retry_after if isinstance(outcome, Failed) else None
        limit, retry_on = task.spec.retry.limit, task.spec.retry.retry_on
        backoff = task.retry_delay(ref.attempt - attempt_base, retry_after=retry_after,
                                   rand=rand).total_seconds()
    else:
        limit, backoff = 0, 0.0
    return OutcomeRecord(
        ref=ref,
        transition=transition_for(retry_limit=limit, backoff_seconds=backoff,
                                  attempt=ref.attempt - attempt_base, outcome=outcome,
                                  now=finished,
                                  retry_on=retry_on),
        started_at=started,
        finished_at=finished,
        worker=worker,
        dependents=task.dependents if task is not None else (),
        downstream=(tuple(workflow.downstream(task.name))
                    if task is not None and workflow is not None else ()),
        claim=claim,
        lease_before=lease_before,
        locks=locks,
        lock_lost=lock_lost,
        stage=task.stage if task is not None else "main",
        continue_on_failed=task is not None and task.continues_on_failure,
    )


def redact_outcome(outcome: Outcome | SkippedByCondition | LostAttempt | Deferred,
                   redactor: Redactor) -> Outcome | SkippedByCondition | LostAttempt | Deferred:
    """``outcome`` with every secret value in its outputs (keys and strings at any depth)
    or error text replaced by its marker (:mod:`conveyor_engine.redaction`). Pure."""
    if isinstance(outcome, Succeeded):
        return replace(outcome, outputs=redactor.value(outcome.outputs))
    if isinstance(outcome, Failed | LostAttempt):
        return replace(outcome, error=redactor.text(outcome.error))
    if isinstance(outcome, Deferred):
        return replace(outcome, message=redactor.text(outcome.message))
    return outcome


def lock_lost_transition(job: Job, ctx: TaskContext, tokens: dict[str, int]) -> Transition:
    """What an attempt that held ``tokens`` becomes when a lock is taken from it before its
    outcome is committed (its lease ran out and a newer holder took it): ``Lost``, reason
    ``LockLost``, retried under the task's policy like a lost worker."""
    held = header_value(tokens)
    record = outcome_record(
        job.claimed.ref, LostAttempt(f"a lock was taken by a newer holder after its lease "
                                     f"ran out (held {held})", reason=LOCK_LOST),
        worker="", started=ctx_now(), finished=ctx_now(), workflow=job.workflow,
        task=job.task, attempt_base=job.claimed.attempt_base)
    return record.transition


def ctx_now() -> datetime:
    """Now, UTC (the lock-lost transition's retry is timed from when it is built)."""
    return datetime.now(UTC)


def lost_record(
    held: HeldClaim, *, error: str, now: datetime, lease_before: datetime,
    workflow: CompiledWorkflow | None, retryable: bool = True,
) -> OutcomeRecord:
    """The record that takes over ``held``: its attempt ``Lost`` (reason ``WorkerLost``),
    from the claim's start to ``now``, under its worker's name.

    Fenced by the held claim's token and committed only while the task's lease ran out
    before ``lease_before``. Retried under the task's retry policy (a lost attempt counts
    against ``retry.limit``) unless ``retryable`` is False (a dead letter).
    """
    task = workflow.tasks.get(held.ref.task) if workflow is not None else None
    return outcome_record(
        held.ref, LostAttempt(error, retryable=retryable), worker=held.worker,
        started=held.claimed_at or now, finished=now, workflow=workflow, task=task,
        claim=held.claim, lease_before=lease_before, attempt_base=held.attempt_base)


def failed_for_good(record: OutcomeRecord, error: str) -> OutcomeRecord:
    """``record`` with its outcome replaced by a final failure with ``error`` (for an
    outcome the database refuses to store); times, worker and dependents are kept."""
    return replace(record, transition=transition_for(
        retry_limit=0, backoff_seconds=0, attempt=record.ref.attempt,
        outcome=Failed(error, retryable=False), now=record.finished_at))


def outcome_label(outcome: object) -> str:
    """The ``outcome`` label of the attempts metric: ``succeeded``, ``failed``, ...."""
    if isinstance(outcome, SkippedByCondition):
        return "skipped"
    if isinstance(outcome, LostAttempt):
        return "lost"
    return type(outcome).__name__.lower()
