"""kopf handlers of WorkerPools: keep the pool's Deployment matching its spec.

Scaling and WorkerPool status belong to :class:`.scaler.PoolScaler`; these handlers only
(re)build the Deployment's template, move it when the pool's namespace changes, and register
the pool with the scaler (or report to it why they cannot).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NoReturn

import kopf
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from ..reasons import ConditionReason
from ..resources import (
    GROUP,
    VERSION,
    WORKERPOOLS,
    WorkerPoolSpec,
    WorkerPoolStatus,
    requested_namespace,
)
from ..waits import retry_later
from .deployment import Connection, deployment_name, worker_deployment
from .scaler import PoolScaler, PoolState
from .workloads import Workloads, api_message, namespace_missing

log = logging.getLogger(__name__)
#: Seconds before a pool whose Deployment or Redis Secret cannot be had yet is tried again.
RETRY_SECONDS = 10


def _spec_problem(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else f"spec: {err['msg']}")
    return "; ".join(parts)


def deployed_namespace(scaler: PoolScaler, name: str, status: Mapping[str, Any]) -> str | None:
    """The namespace where the pool's Deployment was last put, or None for a pool never seen.

    The scaler's state of the pool knows it; after an operator restart the scaler knows
    nothing yet, so the ``status.deployment`` it wrote (``<namespace>/<name>``) is asked.
    """
    known = scaler.pools.get(name)
    if known is not None:
        return known.namespace
    return WorkerPoolStatus.read(status).deployed_namespace()


async def kept_state(scaler: PoolScaler, workloads: Workloads, *, name: str, uid: str,
                     generation: int | None, namespace: str,
                     status: Mapping[str, Any]) -> tuple[PoolState, str]:
    """The pool as it runs now, to report a problem with: its Deployment in ``namespace`` at
    the size and readiness that Deployment has (0 when there is none), and the words saying
    so for the condition's message ("" when there is no Deployment).

    A problem changes nothing that runs (as with RedisUnavailable: missing or bad input never
    scales a pool to zero), so the status must show that size, not 0.
    """
    known = scaler.pools.get(name)
    replicas = ready = 0
    try:
        size = await workloads.size(namespace, deployment_name(name))
    except ApiException:
        # Cannot look (forbidden, API trouble): say what the scaler last knew, if anything.
        size = None
        if known is not None and known.namespace == namespace:
            replicas, ready = known.replicas, known.ready_replicas
    if size is not None:
        replicas, ready = size.replicas, size.ready
    spec = known.spec if known is not None else WorkerPoolSpec()
    state = PoolState(name, uid, generation, spec, namespace, replicas, status=dict(status))
    state.ready_replicas = ready
    keeping = (f"; keeping {namespace}/{deployment_name(name)} at {replicas} replica(s)"
               if size is not None or replicas else "")
    return state, keeping


@kopf.on.resume(GROUP, VERSION, WORKERPOOLS)
@kopf.on.create(GROUP, VERSION, WORKERPOOLS)
@kopf.on.update(GROUP, VERSION, WORKERPOOLS, field="spec")
async def pool_changed(body: kopf.Body, name: str, uid: str, meta: kopf.Meta,
                       status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    """Build or update the pool's Deployment and hand the pool to the scaler
    (:func:`_pool_changed`); then, whatever came of it, Executions not started for want of
    a pool look again (it may have appeared, become ready, or got a problem), and so do
    Workflows not Ready that use it (:mod:`..catalogues`: its Secrets may have changed)."""
    try:
        await _pool_changed(body, name, uid, meta, status, memo)
    finally:
        memo.waiting.poke()
        if getattr(memo, "recompiler", None) is not None:
            memo.recompiler.pool_changed(name)


async def _pool_changed(body: kopf.Body, name: str, uid: str, meta: kopf.Meta,
                        status: kopf.Status, memo: kopf.Memo) -> None:
    """Build or update the pool's Deployment and hand the pool to the scaler.

    A spec that changes ``namespace`` moves the pool: the Deployment is created in the new
    namespace first, then the one in the old namespace is deleted. An invalid spec, or a
    Deployment that cannot be applied (missing namespace, forbidden), leaves everything
    running as it is and turns the pool's ``Ready`` condition False with the reason; the
    latter are retried every ``RETRY_SECONDS``.
    """
    config = memo.config
    scaler: PoolScaler = memo.scaler
    workloads: Workloads = memo.workloads
    generation = meta.get("generation")
    raw = dict(body.get("spec") or {})
    namespace = requested_namespace(raw, config.worker_namespace)
    dname = deployment_name(name)
    previous = deployed_namespace(scaler, name, status)
    try:
        spec = WorkerPoolSpec.model_validate(raw)
    except ValidationError as exc:
        # Nothing of an invalid spec is applied, not even its namespace: report the
        # Deployment that runs, where it runs.
        state, keeping = await kept_state(
            scaler, workloads, name=name, uid=uid, generation=generation,
            namespace=previous or namespace, status=status)
        await scaler.report_problem(state, ConditionReason.INVALID_SPEC,
                                    _spec_problem(exc) + keeping)
        return
    step = f"apply Deployment {namespace}/{dname}"
    try:
        current = await workloads.replicas(namespace, dname)
        replicas = spec.min_replicas if current is None else current
        connection = Connection(
            key_prefix=config.key_prefix, secret=config.worker_connection_secret,
            redis_url=None if config.worker_connection_secret else config.redis_url,
            database_url=None if config.worker_connection_secret else config.database_url)
        deployment = worker_deployment(pool=name, uid=uid, spec=spec, namespace=namespace,
                                       image=config.worker_image, replicas=replicas,
                                       connection=connection)
        await workloads.apply_deployment(deployment, keep_replicas=current is not None)
        if previous is not None and previous != namespace:
            # The pool moved. Nothing scales the old Deployment any more, so its workers
            # would run on forever: delete it, now that the new one exists. Its workers stop
            # as on a scale-down (SIGTERM: finish or hand back their tasks within the grace
            # period), and the new ones pick the tasks up. Done before the scaler's state is
            # replaced, so that a failure here is retried knowing the old namespace.
            step = f"delete the old Deployment {previous}/{dname}"
            await workloads.delete_deployment(previous, dname)
            log.info("pool %s moved from namespace %s to %s", name, previous, namespace)
    except ApiException as exc:
        await _deployment_failed(scaler, workloads, exc, step=step, name=name, uid=uid,
                                 generation=generation, namespace=namespace,
                                 previous=previous, status=status)
    state = PoolState(name, uid, generation, spec, namespace, replicas, status=dict(status))
    redis_url = None
    ref = spec.redis.url_secret_ref
    if ref is not None:
        try:
            redis_url = await workloads.secret_value(namespace, ref.name, ref.key)
        except (LookupError, ApiException) as exc:
            await scaler.report_problem(state, ConditionReason.REDIS_SECRET_MISSING, str(exc))
            raise kopf.TemporaryError(str(exc), delay=RETRY_SECONDS) from None
    new_pool = name not in scaler.pools
    await scaler.upsert(state, redis_url)
    if new_pool:
        memo.follower.refresh_all()  # Executions waiting for this pool stop saying so


async def _deployment_failed(scaler: PoolScaler, workloads: Workloads, exc: ApiException, *,
                             step: str, name: str, uid: str, generation: int | None,
                             namespace: str, previous: str | None,
                             status: Mapping[str, Any]) -> NoReturn:
    """Report why the pool's Deployment could not be applied, keeping what runs, and raise
    the error that makes kopf try again (quietly for a namespace still to be created)."""
    # What runs is the Deployment of the previous namespace when the pool was moving, else
    # whatever exists (or not) in the namespace asked for.
    kept = previous or namespace
    state, keeping = await kept_state(scaler, workloads, name=name, uid=uid,
                                      generation=generation, namespace=kept, status=status)
    if namespace_missing(exc):
        reason = ConditionReason.NAMESPACE_NOT_FOUND
        message = (f"namespace {namespace} not found; Deployment {deployment_name(name)} is "
                   f"created there once it exists")
    else:
        reason = ConditionReason.DEPLOYMENT_FAILED
        message = f"cannot {step}: {api_message(exc)}"
    await scaler.report_problem(state, reason, message + keeping)
    if reason == ConditionReason.NAMESPACE_NOT_FOUND:
        # The condition says it all; a user has to create the namespace (or fix the spec).
        raise retry_later(reason, message, RETRY_SECONDS) from None
    raise kopf.TemporaryError(f"{reason}: {message}", delay=RETRY_SECONDS) from None


@kopf.on.event(GROUP, VERSION, WORKERPOOLS)
async def pool_event(event: Mapping[str, Any], name: str, uid: str, memo: kopf.Memo,
                     **_: Any) -> None:
    """Forget a pool the moment the API says it is gone.

    WorkerPools carry no finalizer, so kopf seldom runs :func:`pool_deleted` (it needs the
    object still present, marked for deletion); the watch's ``DELETED`` event always
    arrives. Executions with open tasks on the pool then say ``PoolNotFound``.
    """
    if event.get("type") == "DELETED":
        await memo.scaler.remove(name, uid)
        memo.follower.refresh_all()


@kopf.on.delete(GROUP, VERSION, WORKERPOOLS, optional=True)
async def pool_deleted(name: str, body: kopf.Body, status: kopf.Status, memo: kopf.Memo,
                       **_: Any) -> None:
    """Stop scaling; remove the Deployment (garbage collection does it too, via its owner).

    Both the spec's namespace and the one the Deployment was last put in are cleaned: they
    differ while a move to a namespace that does not exist yet is pending.
    """
    known = deployed_namespace(memo.scaler, name, status)
    await memo.scaler.remove(name)
    memo.follower.refresh_all()  # Executions with tasks on this pool now say it is missing
    namespace = requested_namespace(body.get("spec"), memo.config.worker_namespace)
    for where in sorted({namespace, known} - {None}):
        await memo.workloads.delete_deployment(where, deployment_name(name))
