"""The gate a claimed task passes before it runs: its locks, then its rate-limit token.

Runs on the worker right after the claim, for tasks that declare ``locks`` or a
``rateLimit`` (others never reach it). Lock names and the rate-limit key are rendered from
the task's expression context; the locks are taken all or none in PostgreSQL
(:meth:`~conveyor_engine.store.Store.acquire_locks`), then the token in Redis
(:class:`~conveyor_engine.tokenbucket.TokenBucket`). Locks first because they can be given
back and a token cannot: a task that got its locks but no token gives the locks back.

A task that cannot pass does not keep its worker slot: the gate returns a
:class:`~conveyor_engine.progress.Deferred` outcome (the task waits in ``Waiting`` with a
``lock`` or ``rate`` timer, saying why). A name that renders badly or a key with no declared
limit fails the task (not retryable: the same inputs render the same way).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .. import dependencies, locks, ratelimits
from ..expressions import ExpressionError
from ..model import RateLimitSpec
from ..progress import Deferred
from ..store import Store
from ..tasktypes.base import Failed
from ..tokenbucket import TokenBucket
from .context import Job

log = logging.getLogger(__name__)

#: How long a declared limit read from PostgreSQL is reused, in seconds.
_LIMIT_CACHE_SECONDS = 10.0
#: How soon a task retries the gate after Redis or PostgreSQL failed in it, in seconds.
_OUTAGE_RETRY_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Passed:
    """The task may run: ``tokens`` are its locks' fencing tokens by name (empty when it
    takes none)."""

    tokens: dict[str, int]


class Gate:
    """Locks and rate-limit tokens for claimed tasks of one worker."""

    def __init__(self, *, store: Store, bucket: TokenBucket, worker: str,
                 lock_lease_seconds: float) -> None:
        self._store, self._bucket, self._worker = store, bucket, worker
        self._lease = lock_lease_seconds
        self._limits: dict[str, tuple[float, RateLimitSpec | None]] = {}

    async def enter(self, job: Job) -> Passed | Deferred | Failed:
        """Take ``job``'s locks and token; see the module docstring for the outcomes."""
        task, context = job.task, job.context
        if task.when is not None and job.claimed.resume_from is None:
            try:
                if not task.when.evaluate(context):
                    return Passed({})  # it will be skipped: it takes nothing
            except ExpressionError:
                return Passed({})  # execute() reports the broken condition
        try:
            wanted = [(_render(t, context, f"locks[{i}].name"), limit)
                      for i, (t, limit) in enumerate(task.locks)]
            key = (_render(task.rate_key, context, "rateLimit.key")
                   if task.rate_key is not None else None)
        except _Unusable as exc:
            return Failed(str(exc), retryable=False)
        rate = None
        if key is not None:
            units = task.spec.rate_limit.units if task.spec.rate_limit else 1
            try:
                spec = await self._limit(job, key)
            except Exception as exc:
                return _outage(exc, ratelimits.TIMER_KIND, ratelimits.RATE_LIMITED)
            if spec is None:
                return Failed(f'rateLimit.key: no rate limit is declared for key "{key}"; '
                              f"declare it in a workflow's rateLimits", retryable=False)
            rate = ratelimits.rate_of(spec)
            if units > rate.burst:
                return Failed(f'rateLimit.units: {units} units can never be granted by '
                              f'"{key}", whose burst is {rate.burst}', retryable=False)
        return await self._take(job, wanted, key, rate)

    async def _take(self, job: Job, wanted: list[tuple[str, int]], key: str | None,
                    rate: ratelimits.Rate | None) -> Passed | Deferred:
        now = _now()
        tokens: dict[str, int] = {}
        claim = job.claimed.claim
        if wanted:
            try:
                acquired = await self._store.acquire_locks(
                    job.claimed.ref, claim=claim, worker=self._worker, locks=wanted,
                    now=now, lease=timedelta(seconds=self._lease))
            except Exception as exc:
                return _outage(exc, locks.TIMER_KIND, locks.LOCK_HELD)
            if not acquired.granted:
                assert acquired.waiting_for is not None and acquired.refusal is not None
                return Deferred(
                    until=locks.recheck_at(now, self._lease), timer_kind=locks.TIMER_KIND,
                    reason=locks.LOCK_HELD, waiting_for=acquired.waiting_for,
                    message=locks.wait_message(acquired.waiting_for, acquired.limit,
                                               acquired.refusal.blocking))
            tokens = acquired.tokens
        if key is None or rate is None:
            return Passed(tokens)
        units = job.task.spec.rate_limit.units if job.task.spec.rate_limit else 1
        try:
            decision = await self._bucket.take(key, rate, units)
        except Exception as exc:
            decision = None
            deferred = _outage(exc, ratelimits.TIMER_KIND, ratelimits.RATE_LIMITED)
        else:
            deferred = Deferred(
                until=_now() + timedelta(microseconds=decision.wait_us),
                timer_kind=ratelimits.TIMER_KIND, reason=ratelimits.RATE_LIMITED,
                message=ratelimits.wait_message(key, decision.wait_us))
        if decision is not None and decision.allowed:
            return Passed(tokens)
        if tokens:  # no token: give the locks back so others can use them meanwhile
            try:
                await self._store.release_locks(job.claimed.ref, claim=claim, now=_now())
            except Exception as exc:  # the commit of the deferral releases them anyway
                dependencies.report(log, exc, "giving back locks failed")
        return deferred

    async def _limit(self, job: Job, key: str) -> RateLimitSpec | None:
        """The limit of ``key``: the job's workflow's own declaration, else the one
        recorded by another workflow (read from PostgreSQL, reused for 10 s)."""
        for spec in job.workflow.spec.rate_limits:
            if spec.key == key:
                return spec
        cached = self._limits.get(key)
        if cached is not None and time.monotonic() - cached[0] < _LIMIT_CACHE_SECONDS:
            return cached[1]
        spec = await self._store.rate_limit(key)
        self._limits[key] = (time.monotonic(), spec)
        return spec


class _Unusable(ValueError):
    """A lock name or rate-limit key that rendered to something unusable."""


def _render(template, context: dict, field: str) -> str:
    try:
        value = template.render(context)
    except ExpressionError as exc:
        # A template's error names its field already (it was compiled with it).
        text = str(exc)
        raise _Unusable(text if text.startswith(f"{field}:") else f"{field}: {text}") from None
    problem = locks.name_problem(value, field)
    if problem is not None:
        raise _Unusable(problem)
    return value


def _outage(exc: Exception, timer_kind: str, reason: str) -> Deferred:
    """Try the gate again shortly when a store failed in it (the deferral is committed
    once the store answers; nothing is lost)."""
    dependencies.report(log, exc, "taking locks or a rate-limit token failed; retrying soon")
    return Deferred(until=_now() + timedelta(seconds=_OUTAGE_RETRY_SECONDS),
                    timer_kind=timer_kind, reason=reason,
                    message=f"could not check ({type(exc).__name__}); trying again")


def _now() -> datetime:
    return datetime.now(UTC)
