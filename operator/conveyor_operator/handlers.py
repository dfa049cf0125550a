"""kopf handlers: thin glue between the resources and the engine.

Workflows are compiled and registered on create, resume and spec change. Executions are
submitted once (idempotent on the object's uid), then followed by
:class:`~conveyor_operator.follower.ExecutionFollower`. No handler reacts to status, so the
operator's own status writes never start work.
"""

from __future__ import annotations

import asyncio
import logging
import os
from datetime import UTC, datetime
from typing import Any

import kopf
from pydantic import ValidationError

from conveyor_engine.api import (
    ChildWorkflowsNotFound,
    CompiledWorkflow,
    Engine,
    InvalidInputs,
    TaskTypesUnavailable,
    WorkflowInvalid,
    start_health_server,
)
from conveyor_engine.phases import ExecutionPhase

from . import waitcount, watchclock
from .catalogues import Recompiler, TypeWaits, pool_facts, pools_used
from .clock import clock_from
from .control import RunControl
from .crdcheck import expected_crds
from .crdwatch import CrdWatch
from .dependencies import retry_delay, store_unavailable
from .diffbase import DigestDiffBaseStorage
from .follower import ExecutionFollower
from .kube import Kube, ObjectRef
from .pools.scaler import PoolScaler
from .pools.workloads import Workloads
from .probes import OperatorState
from .reaper import ExecutionReaper
from .reasons import ConditionReason
from .resources import (
    EXECUTIONS,
    GROUP,
    VERSION,
    WORKFLOWS,
    ExecutionDefaults,
    ExecutionSpec,
    ExecutionStatus,
    Metadata,
    workflow_spec,
)
from .schedules.runner import ScheduleRunner
from .schedules.runs import scheduled_time_of
from .settings import OperatorSettings
from .status import (
    Waiting,
    execution_status,
    phase_events,
    refused_event,
    status_patch,
    workflow_status,
)
from .ttl import deletion_due, effective_ttl, finished_at
from .waiting import WaitingExecution, WaitingExecutions
from .waits import install_filter, retry_later
from .workflowgraph import WorkflowGraph

log = logging.getLogger(__name__)
FINALIZER = "conveyor.dev/cancel-on-delete"
#: How often ``conveyor_executions_waiting`` is refreshed (:mod:`.waitcount`), in seconds.
WAITCOUNT_SECONDS = 15.0


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    """Configure kopf and connect to the engine, the API and the change stream."""
    config: OperatorSettings = memo.config
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = DigestDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    install_filter()
    settings.watching.server_timeout = config.watch_timeout_seconds
    memo.engine = await Engine.connect(config)
    memo.kube = await Kube.connect(config.kubeconfig or os.environ.get("KUBECONFIG"))
    memo.workflows = {}
    memo.reaper = ExecutionReaper(memo.kube)
    memo.reaper_task = asyncio.create_task(memo.reaper.run(), name="reaper")
    memo.follower = ExecutionFollower(memo.engine, memo.kube,
                                      interval=config.status_interval_seconds,
                                      resync=config.resync_interval_seconds,
                                      pool_exists=lambda name: name in memo.scaler.pools,
                                      pool_without_workers=lambda name:
                                          memo.scaler.without_workers(name),
                                      on_final=lambda ref, status: run_finished(
                                          memo, ref, status))
    memo.follower_task = asyncio.create_task(memo.follower.run(), name="follower")
    memo.control = RunControl(memo.engine, memo.kube, memo.follower, memo.reaper)
    memo.workloads = Workloads(memo.kube.api)
    memo.typewaits = TypeWaits()
    memo.graph = WorkflowGraph()
    memo.recompiler = Recompiler(memo.typewaits, lambda key: compile_again(memo, key))
    memo.recompiler_task = asyncio.create_task(memo.recompiler.run(), name="recompiler")
    memo.scaler = PoolScaler(memo.engine, memo.kube, memo.workloads,
                             fallback=config.pool_check_seconds,
                             timer_horizon=config.timer_horizon_seconds,
                             degraded_after=config.pool_degraded_after_seconds,
                             on_catalogue=memo.recompiler.pool_changed,
                             awaited=memo.typewaits.awaited)
    memo.scaler_task = asyncio.create_task(memo.scaler.run(), name="scaler")
    memo.waiting = WaitingExecutions(memo.kube, lambda entry: _start(memo, entry),
                                     first=config.workflow_retry_seconds,
                                     cap=config.wait_recheck_max_seconds)
    memo.waiting_task = asyncio.create_task(memo.waiting.run(), name="waiting")
    memo.schedules = ScheduleRunner(memo.kube, clock_from(config.clock_file))
    memo.waitcount_task = asyncio.create_task(
        waitcount.run(memo.engine, memo.waiting.reasons, interval=WAITCOUNT_SECONDS),
        name="waitcount")
    memo.crds = CrdWatch(memo.kube, memo.get("state") or OperatorState(), expected_crds(),
                         lambda: rewrite_statuses(memo),
                         event_namespace=config.namespace or config.worker_namespace)
    if config.metrics_port:
        start_health_server(config.metrics_port, lambda: True)
    if "state" in memo:  # the probes (operate.py): kopf's startup is done
        memo.state.started = True


@kopf.on.login()
async def login(memo: kopf.Memo, **kwargs: Any) -> kopf.ConnectionInfo | kopf.AiohttpSession | None:
    """kopf's usual credentials, on a session that times each watch's signs of life for
    ``/healthz`` (:mod:`.watchclock`)."""
    if "state" not in memo:
        return await kopf.login_via_async_client(**kwargs)
    return await watchclock.login(memo.state, **kwargs)


@kopf.on.event("apiextensions.k8s.io", "v1", "customresourcedefinitions")
async def crd_event(body: kopf.Body, type: str | None, memo: kopf.Memo, **_: Any) -> None:
    """Compare the operator's own CRDs whenever they change (:mod:`.crdwatch`)."""
    if "crds" in memo:
        await memo.crds.seen(dict(body), deleted=type == "DELETED")


async def rewrite_statuses(memo: kopf.Memo) -> None:
    """Write every Execution's and Workflow's status again, whole (after a CRD that pruned
    fields is restored). Executions go through the follower; Workflows are rebuilt from
    what was compiled."""
    config: OperatorSettings = memo.config
    kube: Kube = memo.kube
    for found in await kube.list_objects(EXECUTIONS, config.namespace):
        meta, status = found["metadata"], found.get("status") or {}
        execution_id = ExecutionStatus.read(status).execution_id
        if execution_id:
            memo.follower.rewrite(execution_id,
                                  ObjectRef(meta["namespace"], meta["name"], meta["uid"]),
                                  meta.get("generation"))
    for found in await kube.list_objects(WORKFLOWS, config.namespace):
        meta = found["metadata"]
        generation, compiled = memo.workflows.get((meta["namespace"], meta["name"]),
                                                  (None, None))
        if generation != meta.get("generation") or compiled is None:
            continue  # not compiled at this generation yet: its handler writes the status
        workflow = compiled if isinstance(compiled, CompiledWorkflow) else None
        waiting = str(compiled) if isinstance(compiled, TaskTypesUnavailable) else None
        problem = None if workflow is not None or waiting else str(compiled)
        desired = workflow_status(generation=generation, workflow=workflow, problem=problem,
                                  previous=found.get("status") or {}, now=datetime.now(UTC),
                                  waiting=waiting)
        ref = ObjectRef(meta["namespace"], meta["name"], meta["uid"], kind="Workflow",
                        plural=WORKFLOWS)
        await kube.patch_status(ref, {k: v for k, v in desired.items() if v is not None},
                                known={})


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    """Stop following and close connections."""
    tasks = (memo.follower_task, memo.scaler_task, memo.waiting_task, memo.reaper_task,
             memo.waitcount_task, memo.recompiler_task)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await memo.schedules.close()
    await memo.engine.close()
    await memo.kube.close()


@kopf.on.resume(GROUP, VERSION, WORKFLOWS)
@kopf.on.create(GROUP, VERSION, WORKFLOWS)
@kopf.on.update(GROUP, VERSION, WORKFLOWS, field="spec")
async def workflow_changed(body: kopf.Body, name: str, namespace: str, meta: kopf.Meta,
                           status: kopf.Status, patch: kopf.Patch, memo: kopf.Memo,
                           retry: int = 0, **_: Any) -> None:
    """Compile and register the workflow against its pools' facts; report ``Ready``,
    ``InvalidSpec`` or ``TaskTypeUnavailable`` (waiting for a pool's workers) on status."""
    generation = meta.get("generation")
    try:
        compiled, problem, waiting = await _compile(memo, namespace, name, body, generation)
    except Exception as exc:
        if not store_unavailable(exc):
            raise
        # Redis or PostgreSQL is down: say so on status and try again soon (kopf's default
        # for an error is 60 s, which outlasts most blips by far).
        delay = retry_delay(retry, cap=memo.config.store_retry_max_seconds)
        why = f"{type(exc).__name__}: {exc}"[:300]
        patch.status.update(workflow_status(
            generation=generation, workflow=None, problem=None, previous=dict(status),
            now=datetime.now(UTC), store_problem=why))
        raise retry_later(str(ConditionReason.STORE_UNAVAILABLE), why, delay) from None
    reason, said = waiting or (ConditionReason.TASK_TYPE_UNAVAILABLE, None)
    patch.status.update(workflow_status(
        generation=meta.get("generation"), workflow=compiled, problem=problem,
        previous=dict(status), now=datetime.now(UTC), waiting=said, waiting_reason=reason))
    memo.waiting.poke()  # Executions waiting for this Workflow look again
    memo.schedules.workflow_changed(namespace, name)  # and Schedules that run it


async def _compile(memo: kopf.Memo, namespace: str, name: str, body: Any,
                   generation: int | None
                   ) -> tuple[CompiledWorkflow | None, str | None, tuple[str, str] | None]:
    """Compile and register a Workflow object against the facts of the pools it uses
    (:mod:`.catalogues`) and of the Workflows known (:mod:`.workflowgraph`):
    ``(compiled, problem, (waiting reason, message))``, one of them set. Remembers the
    result (``memo.workflows``) and whether it waits on a pool (``memo.typewaits``, which
    keeps one worker in the pool); the Workflows that call it are compiled again when its
    facts changed. Store errors propagate."""
    engine: Engine = memo.engine
    key = (namespace, name)
    spec = workflow_spec(body)
    memo.recompiler.compile(memo.graph.set(key, spec))
    used = pools_used(spec)
    facts = await pool_facts(engine, memo.scaler, used)
    try:
        compiled = await engine.register(f"{namespace}/{name}", spec, pools=facts,
                                         workflows=dict(memo.graph.facts))
    except ChildWorkflowsNotFound as exc:
        memo.workflows[key] = (generation, exc)
        memo.typewaits.note(key, used)
        log.info("workflow %s/%s waits for a child: %s", namespace, name, exc)
        return None, None, (ConditionReason.CHILD_WORKFLOW_NOT_FOUND,
                            f"waiting for a child workflow: {exc}")
    except WorkflowInvalid as exc:
        memo.workflows[key] = (generation, str(exc))
        memo.typewaits.note(key, used)  # a pool's change may make it valid (a Secret)
        log.info("workflow %s/%s is invalid: %s", namespace, name, exc)
        return None, str(exc), None
    except TaskTypesUnavailable as exc:
        memo.workflows[key] = (generation, exc)
        memo.typewaits.note(key, used, {u.pool for u in exc.unavailable})
        memo.scaler.wake()  # a pool at zero gets a worker to advertise
        log.info("workflow %s/%s waits: %s", namespace, name, exc)
        return None, None, (ConditionReason.TASK_TYPE_UNAVAILABLE, str(exc))
    memo.workflows[key] = (generation, compiled)
    memo.typewaits.forget(key)
    return compiled, None, None


async def compile_again(memo: kopf.Memo, key: tuple[str, str]) -> None:
    """Compile the Workflow ``key`` again (a pool it uses changed) and write its status if
    that changed it; Executions and Schedules waiting for it look again."""
    namespace, name = key
    found = await memo.kube.get(namespace, WORKFLOWS, name)
    if found is None:
        memo.typewaits.forget(key)
        return
    meta = found.get("metadata") or {}
    generation = meta.get("generation")
    compiled, problem, waiting = await _compile(memo, namespace, name, found, generation)
    previous = found.get("status") or {}
    reason, said = waiting or (ConditionReason.TASK_TYPE_UNAVAILABLE, None)
    desired = workflow_status(generation=generation, workflow=compiled, problem=problem,
                              previous=previous, now=datetime.now(UTC), waiting=said,
                              waiting_reason=reason)
    change = status_patch(previous, desired)
    if change:
        ref = ObjectRef(namespace, name, meta.get("uid", ""), kind="Workflow",
                        plural=WORKFLOWS)
        await memo.kube.patch_status(ref, change, known=previous)
    if compiled is not None:
        memo.waiting.poke()
        memo.schedules.workflow_changed(namespace, name)


@kopf.on.delete(GROUP, VERSION, WORKFLOWS, optional=True)
async def workflow_deleted(name: str, namespace: str, memo: kopf.Memo, **_: Any) -> None:
    """Forget the workflow; Executions already submitted keep their stored version."""
    memo.workflows.pop((namespace, name), None)
    memo.typewaits.forget((namespace, name))
    memo.recompiler.compile(memo.graph.set((namespace, name), None))


@kopf.on.resume(GROUP, VERSION, EXECUTIONS)
@kopf.on.create(GROUP, VERSION, EXECUTIONS)
async def execution_created(body: kopf.Body, name: str, namespace: str, uid: str,
                            meta: kopf.Meta, status: kopf.Status, patch: kopf.Patch,
                            memo: kopf.Memo, **_: Any) -> None:
    """Submit the execution once (the uid is the idempotency key), then follow it."""
    follower: ExecutionFollower = memo.follower
    ref = ObjectRef(namespace, name, uid)
    generation = meta.get("generation")
    previous = dict(status)
    seen = ExecutionStatus.read(previous)
    if seen.execution_id:
        follower.track(seen.execution_id, ref, generation, previous)
        # The spec's lifecycle fields may have changed while no operator was watching.
        await _apply_lifecycle(memo, ref, seen.execution_id, body, generation, previous)
        return
    if seen.phase == ExecutionPhase.FAILED:
        # Failed before submission (invalid inputs): nothing can change that.
        await expire_later(memo, ref, previous)
        return
    now = datetime.now(UTC)
    try:
        spec = ExecutionSpec.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        # The CRD's schema keeps this from happening; an API server without it must not
        # make the handler retry forever.
        await _refuse(memo, ref, patch, Waiting(ConditionReason.INVALID_SPEC,
                                                f"invalid spec: {exc}", final=True),
                      generation=generation, previous=previous, now=now)
        return
    entry = WaitingExecution(ref, generation, spec, previous,
                             Waiting(ConditionReason.SUBMITTING, ""),
                             scheduled_time=scheduled_time_of(meta.get("annotations")))
    waiting = await _start(memo, entry)
    if waiting is not None:
        # Written once; WaitingExecutions re-checks when the Workflow or a pool changes,
        # writing again only if the reason for waiting changes (no kopf retry loop).
        desired = execution_status(generation=generation, state=None, previous=previous,
                                   now=now, waiting=waiting)
        patch.status.update(desired)
        entry.status = {k: v for k, v in {**previous, **desired}.items() if v is not None}
        entry.waiting = waiting
        memo.waiting.add(entry)


async def _start(memo: kopf.Memo, entry: WaitingExecution) -> Waiting | None:
    """Submit the Execution ``entry`` names if its Workflow and pools allow; else why it
    waits. Inputs the workflow refuses fail it (status and a ``Failed`` Event)."""
    ref = entry.ref
    workflow, waiting = await _runnable_workflow(memo, ref.namespace,
                                                 entry.spec.workflow_ref.name)
    if waiting is not None:
        return waiting
    assert workflow is not None
    engine: Engine = memo.engine
    try:
        submission = await engine.submit(workflow, dict(entry.spec.inputs),
                                         idempotency_key=ref.uid,
                                         suspended=entry.spec.suspend,
                                         priority=entry.spec.priority,
                                         deadline_seconds=entry.spec.active_deadline_seconds,
                                         scheduled_time=entry.scheduled_time)
    except InvalidInputs as exc:
        failed = Waiting(ConditionReason.INVALID_INPUTS, str(exc), final=True)
        desired = execution_status(generation=entry.generation, state=None,
                                   previous=entry.status, now=datetime.now(UTC),
                                   waiting=failed)
        await memo.kube.patch_status(ref, status_patch(entry.status, desired),
                                     known=entry.status)
        await memo.kube.post_event(ref, refused_event(failed.message))
        await expire_later(memo, ref, desired)
        return None
    # The follower writes all status from here on: one writer, so a late handler patch can
    # never overwrite a newer phase.
    memo.waiting.forget(ref.uid)
    memo.follower.track(submission.execution_id, ref, entry.generation, entry.status)
    if entry.spec.cancel:  # cancelled while it waited for its Workflow or pool
        await memo.control.apply(ref, submission.execution_id, entry.spec,
                                 generation=entry.generation, status=entry.status)
    return None


@kopf.on.update(GROUP, VERSION, EXECUTIONS, field="spec")
async def execution_spec_changed(body: kopf.Body, name: str, namespace: str, uid: str,
                                 meta: kopf.Meta, status: kopf.Status, memo: kopf.Memo,
                                 retry: int = 0, **_: Any) -> None:
    """Apply ``spec.suspend``, ``spec.cancel`` and ``spec.retry`` to the run
    (:mod:`.lifecycle`); the CRD allows no other change but ``ttlSecondsAfterFinished``."""
    ref = ObjectRef(namespace, name, uid)
    generation = meta.get("generation")
    spec = ExecutionSpec.model_validate(body.get("spec") or {})
    waiting = memo.waiting.get(uid)
    if waiting is not None:  # not submitted yet: it starts with the new spec
        waiting.spec = spec
        waiting.generation = generation  # written as observedGeneration from now on
        if spec.cancel:
            await _cancel_unsubmitted(memo, waiting)
        return
    previous = dict(status)
    execution_id = ExecutionStatus.read(previous).execution_id or await memo.engine.find(uid)
    if execution_id is None:
        return  # being submitted by its create handler, which reads the spec it needs
    try:
        await _apply_lifecycle(memo, ref, execution_id, body, generation, previous)
    except Exception as exc:
        if not store_unavailable(exc):
            raise
        delay = retry_delay(retry, cap=memo.config.store_retry_max_seconds)
        raise retry_later(str(ConditionReason.STORE_UNAVAILABLE),
                          f"{type(exc).__name__}: {exc}"[:300], delay) from None


async def _apply_lifecycle(memo: kopf.Memo, ref: ObjectRef, execution_id: str,
                           body: kopf.Body | dict[str, Any], generation: int | None,
                           status: dict[str, Any]) -> None:
    spec = ExecutionSpec.model_validate(body.get("spec") or {})
    await memo.control.apply(ref, execution_id, spec, generation=generation, status=status)
    # Followed (again) at the new generation, final runs included, so the status says
    # which spec it reflects (observedGeneration) even when nothing had to change.
    memo.follower.track(execution_id, ref, generation, status)


async def _cancel_unsubmitted(memo: kopf.Memo, entry: WaitingExecution) -> None:
    """``spec.cancel`` on an Execution still waiting to start: it never starts, and is
    ``Cancelled`` with its history empty (nothing was submitted)."""
    memo.waiting.forget(entry.ref.uid)
    cancelled = Waiting(ConditionReason.CANCELLED, "cancelled before it started: "
                        "spec.cancel is true", final=True, cancelled=True)
    desired = execution_status(generation=entry.generation, state=None, previous=entry.status,
                               now=datetime.now(UTC), waiting=cancelled)
    await memo.kube.patch_status(entry.ref, status_patch(entry.status, desired),
                                 known=entry.status)
    for event in phase_events(ExecutionPhase.PENDING, ExecutionPhase.CANCELLED,
                              cancelled.message):
        await memo.kube.post_event(entry.ref, event)
    await expire_later(memo, entry.ref, desired)


async def _refuse(memo: kopf.Memo, ref: ObjectRef, patch: kopf.Patch, waiting: Waiting, *,
                  generation: int | None, previous: dict[str, Any], now: datetime) -> None:
    """Fail an Execution that can never start (``waiting.final``): its status, and one
    ``Failed`` Event; never started, so no ``Started`` Event before it."""
    desired = execution_status(generation=generation, state=None, previous=previous,
                               now=now, waiting=waiting)
    patch.status.update(desired)
    await memo.kube.post_event(ref, refused_event(waiting.message))
    await expire_later(memo, ref, desired)


async def _runnable_workflow(
    memo: kopf.Memo, namespace: str, name: str
) -> tuple[CompiledWorkflow | None, Waiting | None]:
    """The compiled workflow an Execution may start now, or why it must wait.

    The Workflow is read from the API (not only from the watch) so that an Execution
    applied together with a Workflow edit never starts on the version before the edit:
    it waits until the current generation is compiled. It also waits for every pool its
    tasks name to exist and be Ready, rather than queueing work no worker will ever take.
    """
    found = await memo.kube.get(namespace, WORKFLOWS, name)
    if found is None:
        return None, Waiting(ConditionReason.WORKFLOW_NOT_FOUND,
                             f"workflow {name!r} not found in namespace {namespace!r}")
    generation = Metadata.model_validate(found.get("metadata") or {"name": name}).generation
    compiled_generation, compiled = memo.workflows.get((namespace, name), (None, None))
    if compiled is None or compiled_generation != generation:
        return None, Waiting(ConditionReason.WORKFLOW_NOT_READY,
                             f"workflow {name!r} generation {generation} is not compiled yet")
    if not isinstance(compiled, CompiledWorkflow):
        return None, Waiting(ConditionReason.WORKFLOW_NOT_READY,
                             f"workflow {name!r} is not Ready: {compiled}")
    pools = {compiled.pool} | {t.spec.pool for t in compiled.tasks.values() if t.spec.pool}
    missing = sorted(p for p in pools if p not in memo.scaler.pools)
    if missing:
        return None, Waiting(ConditionReason.POOL_NOT_FOUND,
                             f"no WorkerPool named {missing[0]!r} (used by workflow {name!r}); "
                             f"create it or name an existing pool")
    for pool in sorted(pools):
        problem = memo.scaler.pools[pool].problem
        # A pool that cannot run workers (invalid spec, missing Secret or namespace) would
        # leave the work queued with nothing to say why; a passing problem (Redis briefly
        # unreachable) blocks nothing: the pool keeps its size and its workers.
        if problem is not None and problem.blocks_work:
            return None, Waiting(ConditionReason.POOL_NOT_READY,
                                 f"WorkerPool {pool!r} (used by workflow {name!r}) is not "
                                 f"Ready: {problem.reason}: {problem.message}")
    return compiled, None


@kopf.on.delete(GROUP, VERSION, EXECUTIONS)
async def execution_deleted(uid: str, name: str, namespace: str, status: kopf.Status,
                            memo: kopf.Memo, **_: Any) -> None:
    """Cancel a running execution whose resource is deleted; its history stays in PostgreSQL.

    The run is found by the object's uid (its idempotency key), not only by
    ``status.executionId``: an object deleted right after submission may not carry the id
    yet, since the follower writes status on its next flush.
    """
    memo.waiting.forget(uid)
    memo.reaper.forget(uid)
    seen = ExecutionStatus.read(status)
    execution_id = seen.execution_id or await memo.engine.find(uid)
    if execution_id:
        memo.follower.forget(execution_id)
        reason = "the Execution resource was deleted"
        if await memo.engine.cancel(execution_id, reason):
            # The follower has let go, so the Cancelled Event is posted here; it outlives
            # the object, for `kubectl get events`.
            for event in phase_events(seen.phase or ExecutionPhase.PENDING,
                                      ExecutionPhase.CANCELLED, reason):
                await memo.kube.post_event(ObjectRef(namespace, name, uid), event)


async def run_finished(memo: kopf.Memo, ref: ObjectRef, status: dict[str, Any]) -> None:
    """The follower wrote a final status for ``ref``: retry the run when its
    ``spec.retry`` asks for one more retry (:mod:`.lifecycle`), else schedule its TTL."""
    found = await memo.kube.get(ref.namespace, EXECUTIONS, ref.name)
    if found is None or (found.get("metadata") or {}).get("uid") != ref.uid:
        return
    execution_id = ExecutionStatus.read(status).execution_id
    if execution_id:
        spec = ExecutionSpec.model_validate(found.get("spec") or {})
        done = await memo.control.apply(ref, execution_id, spec,
                                        generation=(found.get("metadata") or {}).get(
                                            "generation"), status=status)
        if done:
            return  # running again: the TTL counts from its next finish
    await expire_later(memo, ref, status)


async def expire_later(memo: kopf.Memo, ref: ObjectRef, status: dict[str, Any]) -> None:
    """Schedule the deletion of the finished Execution ``ref`` (its ``status``) when its
    ``ttlSecondsAfterFinished`` (its own, else its Workflow's ``executionDefaults``, else
    its Namespace's annotation) is due (:mod:`.ttl`); nothing when none is set. Reads the
    object, its Workflow and its Namespace (each only while no TTL is found)."""
    found = await memo.kube.get(ref.namespace, EXECUTIONS, ref.name)
    if found is None or (found.get("metadata") or {}).get("uid") != ref.uid:
        return
    spec = ExecutionSpec.model_validate(found.get("spec") or {})
    default = None
    if spec.ttl_seconds_after_finished is None:
        workflow = await memo.kube.get(ref.namespace, WORKFLOWS, spec.workflow_ref.name)
        raw = ((workflow or {}).get("spec") or {}).get("executionDefaults") or {}
        default = ExecutionDefaults.model_validate(raw).ttl_seconds_after_finished
    namespace_default = None
    if spec.ttl_seconds_after_finished is None and default is None:
        namespace_default = await memo.reaper.namespace_default(ref)
    due = deletion_due(status.get("phase"), finished_at(status),
                       effective_ttl(spec.ttl_seconds_after_finished, default,
                                     namespace_default))
    if due is not None:
        memo.reaper.schedule(ref, due)
