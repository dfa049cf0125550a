"""Schedules' timers: one asyncio task per Schedule that wakes when a tick falls due, decides
it (:mod:`.ticks`), creates the Execution (:mod:`.runs`), posts Events and writes status.

A timer is woken early by a change of its Schedule (kopf's handlers call :meth:`upsert`), by
a change of phase of a run it created (:meth:`run_changed`: ``status.active`` and the history
limits) and by its Workflow appearing (:meth:`workflow_changed`). On operator start the
resume handler upserts every Schedule, and the first look decides every tick missed since
``status.lastTickTime`` (or the newest run's scheduled time, if its status write was lost).

Safety does not rest on this process being alone: a run's name is derived from its scheduled
time, so creating it twice (a restart, a second acting replica) answers 409 AlreadyExists,
which counts as created. Forbid reads the open runs from the API at each tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..clock import Clock
from ..kube import Kube, ObjectRef
from ..reasons import ConditionReason, EventReason
from ..resources import EXECUTIONS, SCHEDULES, WORKFLOWS, ScheduleSpec, ScheduleStatus
from ..status import ScheduleFacts, rfc3339, schedule_status, status_patch, tick_event
from .cron import CronSchedule, ScheduleError, parse_schedule
from .runs import (
    SCHEDULE_LABEL,
    InputsError,
    Owner,
    Run,
    owned_runs,
    parse_time,
    render_inputs,
    run_manifest,
    run_name,
    runs_to_delete,
    schedule_label,
)
from .ticks import (
    ConcurrencyPolicy,
    MissedRunPolicy,
    Tick,
    TickPlan,
    concurrency_decision,
    is_late,
    plan_ticks,
)

log = logging.getLogger(__name__)

#: Seconds (real) before a timer whose look failed (API trouble) looks again.
RETRY_SECONDS = 5.0
#: Events posted for skipped ticks in one look; the rest are summed up in one more.
MAX_TICK_EVENTS = 10


@dataclass
class _Entry:
    """One Schedule's timer and what it knows."""

    ref: ObjectRef
    body: dict[str, Any]
    status: dict[str, Any]
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None
    phases: dict[str, str | None] = field(default_factory=dict)
    decided_through: datetime | None = None


class ScheduleRunner:
    """The timers of all Schedules this operator serves."""

    def __init__(self, kube: Kube, clock: Clock) -> None:
        """``kube`` reads and writes the API; ``clock`` gives the time (:mod:`..clock`)."""
        self._kube = kube
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    # -- from the handlers ----------------------------------------------------------------------

    def upsert(self, body: dict[str, Any]) -> None:
        """Start the timer of the Schedule ``body`` or hand it the new version; it looks now."""
        meta = body.get("metadata") or {}
        uid = meta.get("uid", "")
        entry = self._entries.get(uid)
        if entry is None:
            ref = ObjectRef(meta.get("namespace", ""), meta.get("name", ""), uid,
                            kind="Schedule", plural=SCHEDULES)
            entry = _Entry(ref, dict(body), dict(body.get("status") or {}))
            self._entries[uid] = entry
            entry.task = asyncio.create_task(self._run(entry), name=f"schedule-{ref.name}")
        else:
            entry.body = dict(body)
        entry.wake.set()

    async def remove(self, uid: str) -> None:
        """Stop the timer of a deleted Schedule (its runs are garbage-collected)."""
        entry = self._entries.pop(uid, None)
        if entry is not None and entry.task is not None:
            entry.task.cancel()
            await asyncio.gather(entry.task, return_exceptions=True)

    def run_changed(self, body: dict[str, Any], deleted: bool = False) -> None:
        """An Execution with the schedule label changed: wake its Schedule's timer if the
        run's phase changed (or it is gone), so status and the history limits follow."""
        meta = body.get("metadata") or {}
        for ref in meta.get("ownerReferences") or []:
            entry = self._entries.get(ref.get("uid", ""))
            if entry is None:
                continue
            phase = None if deleted else (body.get("status") or {}).get("phase")
            uid = meta.get("uid", "")
            if deleted:
                if entry.phases.pop(uid, "gone") != "gone":
                    entry.wake.set()
            elif entry.phases.get(uid, "unseen") != phase:
                entry.phases[uid] = phase
                entry.wake.set()

    def workflow_changed(self, namespace: str, name: str) -> None:
        """A Workflow was created or changed: Schedules that run it look again."""
        for entry in self._entries.values():
            spec = entry.body.get("spec") or {}
            if (entry.ref.namespace == namespace
                    and (spec.get("workflowRef") or {}).get("name") == name):
                entry.wake.set()

    async def close(self) -> None:
        """Stop every timer."""
        tasks = [e.task for e in self._entries.values() if e.task is not None]
        self._entries.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # -- the timer ----------------------------------------------------------------------------

    async def _run(self, entry: _Entry) -> None:
        while True:
            entry.wake.clear()
            try:
                due = await self._look(entry)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("schedule %s/%s: look failed; again in %gs",
                              entry.ref.namespace, entry.ref.name, RETRY_SECONDS)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(entry.wake.wait(), RETRY_SECONDS)
                continue
            if due is None:
                await entry.wake.wait()
            else:
                await self._clock.sleep_until(due, entry.wake)

    async def _look(self, entry: _Entry) -> datetime | None:
        """Decide what is due, act, write status; returns when to look again (None: only
        when woken)."""
        now = self._clock.now()
        meta = entry.body.get("metadata") or {}
        generation = meta.get("generation")
        runs = await self._runs(entry)
        try:
            spec = ScheduleSpec.model_validate(entry.body.get("spec") or {})
            cron = parse_schedule(spec.schedule, spec.time_zone)
        except ValidationError as exc:
            problem = (str(ConditionReason.INVALID_SPEC), _spec_problem(exc))
            await self._write(entry, ScheduleFacts(generation, False, problem, runs=runs), now)
            return None
        except ScheduleError as exc:
            reason = (ConditionReason.INVALID_TIME_ZONE if exc.field == "timeZone"
                      else ConditionReason.INVALID_SCHEDULE)
            await self._write(entry, ScheduleFacts(generation, False, (str(reason), str(exc)),
                                                   runs=runs), now)
            return None
        try:
            # Inputs are checked when the Schedule is read, not at its first tick (which
            # may be a month away): a template other than the scheduled time is an edit
            # to make now, and no next run is promised meanwhile.
            render_inputs(spec.inputs, now, cron.zone)
        except InputsError as exc:
            await self._write(entry, ScheduleFacts(generation, False, (
                str(ConditionReason.INVALID_SPEC), str(exc)), runs=runs), now)
            return None
        status = ScheduleStatus.read(entry.status)
        facts = ScheduleFacts(generation, spec.suspend, runs=runs,
                              last_schedule=parse_time(status.last_schedule_time),
                              last_tick=parse_time(status.last_tick_time),
                              describe=_describe(spec, cron))
        if spec.suspend:
            await self._write(entry, facts, now)
            return None
        baseline = self._baseline(entry, status, runs, now)
        plan = plan_ticks(cron, baseline=baseline, now=now,
                          policy=MissedRunPolicy(spec.missed_run_policy),
                          max_catch_up=spec.max_catch_up,
                          deadline_seconds=spec.starting_deadline_seconds,
                          jitter=spec.jitter_delta, seed=entry.ref.uid)
        missing = None
        if await self._kube.get(entry.ref.namespace, WORKFLOWS, spec.workflow_ref.name) is None:
            missing = (f"workflow {spec.workflow_ref.name!r} not found in namespace "
                       f"{entry.ref.namespace!r}; ticks are skipped until it exists")
        problem, created = await self._act(entry, spec, cron, plan, runs, now, missing)
        # What is decided is remembered (status.lastTickTime), so the next look, here or
        # after a restart, starts after it; a new Schedule's first look decides "nothing
        # before now".
        entry.decided_through = plan.decided_through or baseline
        last = [t for t in (facts.last_schedule, created) if t is not None]
        facts = ScheduleFacts(generation, False, problem,
                              last_tick=entry.decided_through,
                              last_schedule=max(last, default=None),
                              next_tick=plan.next.scheduled if plan.next else None,
                              runs=await self._prune(entry, spec, runs),
                              describe=facts.describe)
        await self._write(entry, facts, now)
        return plan.next.due if plan.next else None

    def _baseline(self, entry: _Entry, status: ScheduleStatus, runs: list[Run],
                  now: datetime) -> datetime:
        """Ticks after this instant are undecided: the latest of what this process decided,
        ``status.lastTickTime``/``lastScheduleTime`` and the newest run's scheduled time
        (a status write lost in a crash); for a new Schedule its creation, or now if that
        lies ahead of this clock."""
        known = [entry.decided_through, parse_time(status.last_tick_time),
                 parse_time(status.last_schedule_time), *(r.scheduled for r in runs)]
        found = [t for t in known if t is not None]
        if found:
            return max(found)
        created = parse_time((entry.body.get("metadata") or {}).get("creationTimestamp"))
        return created if created is not None and created <= now else now

    async def _act(self, entry: _Entry, spec: ScheduleSpec, cron: CronSchedule,
                   plan: TickPlan, runs: list[Run], now: datetime,
                   missing: str | None) -> tuple[tuple[str, str] | None, datetime | None]:
        """Post the Events of skipped ticks, create the runs of the others (under the
        concurrency policy; none while the Workflow is ``missing``, which says why);
        returns a problem for the Ready condition and the scheduled time of the last run
        created."""
        ref = entry.ref
        for skipped in plan.skipped[-MAX_TICK_EVENTS:]:
            await self._event(ref, skipped.reason,
                              f"{rfc3339(skipped.tick.scheduled)}: {skipped.message}")
        hidden = len(plan.skipped) - MAX_TICK_EVENTS
        if plan.truncated or hidden > 0:
            await self._event(ref, EventReason.TOO_MANY_MISSED_RUNS,
                              f"{'more than 100' if plan.truncated else hidden} earlier missed "
                              f"tick(s) not run; set or shorten startingDeadlineSeconds, or "
                              f"check the clock")
        if missing is not None:
            for tick in plan.create:
                await self._event(ref, EventReason.WORKFLOW_NOT_FOUND,
                                  f"{rfc3339(tick.scheduled)}: not run: {missing}")
            return (str(ConditionReason.WORKFLOW_NOT_FOUND), missing), None
        created: datetime | None = None
        for tick in plan.create:
            try:
                inputs = render_inputs(spec.inputs, tick.scheduled, cron.zone)
            except InputsError as exc:
                await self._event(ref, EventReason.INVALID_INPUTS,
                                  f"{rfc3339(tick.scheduled)}: not run: {exc}")
                return (str(ConditionReason.INVALID_SPEC), str(exc)), created
            if await self._create(entry, spec, tick, inputs, runs, now):
                created = tick.scheduled
        return None, created

    async def _create(self, entry: _Entry, spec: ScheduleSpec, tick: Tick,
                      inputs: dict[str, Any], runs: list[Run], now: datetime) -> bool:
        """Create the run of ``tick`` unless the concurrency policy says no; True when it
        exists now (created here, or before: 409)."""
        ref = entry.ref
        name = run_name(ref.name, tick.scheduled)
        if any(r.name == name for r in runs):
            return True  # created before (its status write was lost)
        open_runs = [r.name for r in runs if r.open]
        decision = concurrency_decision(ConcurrencyPolicy(spec.concurrency_policy), open_runs)
        when = rfc3339(tick.scheduled)
        if not decision.create:
            await self._event(ref, EventReason.PREVIOUS_RUN_ACTIVE,
                              f"{when}: not run: {', '.join(open_runs)} still open; "
                              f"concurrencyPolicy Forbid")
            return False
        for victim in decision.cancel:
            await self._cancel(entry, next(r for r in runs if r.name == victim), when)
        owner = Owner(ref.name, ref.namespace, ref.uid)
        manifest = run_manifest(owner, spec, tick.scheduled, inputs)
        stored = await self._kube.create(ref.namespace, EXECUTIONS, manifest)
        uid = (stored or {}).get("metadata", {}).get("uid", "")
        runs.append(Run(name, uid, tick.scheduled, None))
        entry.phases[uid] = None
        if stored is None:
            log.info("schedule %s/%s: %s exists already (created before)", ref.namespace,
                     ref.name, name)
            return True
        late = (f" (missed; {int((now - tick.due).total_seconds())}s late, missedRunPolicy "
                f"{spec.missed_run_policy})" if is_late(tick, now) else "")
        reason = EventReason.MISSED_RUN_CREATED if late else EventReason.RUN_CREATED
        await self._event(ref, reason, f"{when}: created Execution {name}{late}")
        return True

    async def _cancel(self, entry: _Entry, run: Run, when: str) -> None:
        """concurrencyPolicy Replace: ask the open ``run`` to stop (``spec.cancel: true``;
        the Execution's own controller cancels the engine's run)."""
        target = ObjectRef(entry.ref.namespace, run.name, run.uid)
        if await self._kube.patch_spec(target, {"cancel": True}):
            await self._event(entry.ref, EventReason.RUN_REPLACED,
                              f"{when}: cancelling {run.name}; concurrencyPolicy Replace")

    async def _runs(self, entry: _Entry) -> list[Run]:
        """The Executions this Schedule created, as the API has them now."""
        selector = f"{SCHEDULE_LABEL}={schedule_label(entry.ref.name)}"
        found = await self._kube.list_objects(EXECUTIONS, entry.ref.namespace, selector)
        runs = owned_runs(found, entry.ref.uid)
        entry.phases = {r.uid: r.phase for r in runs}
        return runs

    async def _prune(self, entry: _Entry, spec: ScheduleSpec, runs: list[Run]) -> list[Run]:
        """Delete finished runs beyond the history limits; returns the runs left."""
        doomed = runs_to_delete(runs, successful_limit=spec.successful_runs_history_limit,
                                failed_limit=spec.failed_runs_history_limit)
        for run in doomed:
            await self._kube.delete(ObjectRef(entry.ref.namespace, run.name, run.uid))
            log.info("schedule %s/%s: deleted %s (%s) beyond the history limit",
                     entry.ref.namespace, entry.ref.name, run.name, run.phase)
        gone = {r.uid for r in doomed}
        return [r for r in runs if r.uid not in gone]

    async def _write(self, entry: _Entry, facts: ScheduleFacts, now: datetime) -> None:
        desired = schedule_status(facts, previous=entry.status, now=now)
        patch = status_patch(entry.status, desired)
        if not patch:
            return
        if await self._kube.patch_status(entry.ref, patch, known=entry.status):
            merged = {**entry.status, **patch}
            entry.status = {k: v for k, v in merged.items() if v is not None}

    async def _event(self, ref: ObjectRef, reason: EventReason, message: str) -> None:
        log.info("schedule %s/%s: %s: %s", ref.namespace, ref.name, reason, message)
        await self._kube.post_event(ref, tick_event(reason, message))



def _describe(spec: ScheduleSpec, cron: CronSchedule) -> str:
    return f"{spec.schedule!r} in {cron.zone_name}"


def _spec_problem(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else f"spec: {err['msg']}")
    return "; ".join(parts)
