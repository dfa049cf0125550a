"""kopf handlers of WorkerPools: keep the pool's Deployment matching its spec.

Scaling and WorkerPool status belong to :class:`.scaler.PoolScaler`; these handlers only
(re)build the Deployment's template and register the pool with the scaler.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from ..resources import GROUP, VERSION
from .deployment import Connection, deployment_name, worker_deployment
from .model import WorkerPoolSpec
from .scaler import PoolScaler, PoolState
from .workloads import Workloads

log = logging.getLogger(__name__)
WORKERPOOLS = "workerpools"


def _spec_problem(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else f"spec: {err['msg']}")
    return "; ".join(parts)


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
    """Build or update the pool's Deployment and hand the pool to the scaler.

    An invalid spec leaves the Deployment as it is and turns the pool's ``Ready`` condition
    False (``InvalidSpec``), with the status showing the size that Deployment has.
    """
    config = memo.config
    scaler: PoolScaler = memo.scaler
    workloads: Workloads = memo.workloads
    generation = meta.get("generation")
    raw = dict(body.get("spec") or {})
    namespace = raw.get("namespace") or config.worker_namespace
    try:
        spec = WorkerPoolSpec.model_validate(raw)
    except ValidationError as exc:
        # Nothing of an invalid spec is applied: report the Deployment that runs.
        state, keeping = await kept_state(scaler, workloads, name=name, uid=uid,
                                          generation=generation, namespace=namespace,
                                          status=status)
        await scaler.report_problem(state, "InvalidSpec", _spec_problem(exc) + keeping)
        return
    current = await workloads.replicas(namespace, deployment_name(name))
    replicas = spec.min_replicas if current is None else current
    connection = Connection(
        key_prefix=config.key_prefix, secret=config.worker_connection_secret,
        redis_url=None if config.worker_connection_secret else config.redis_url,
        database_url=None if config.worker_connection_secret else config.database_url)
    deployment = worker_deployment(pool=name, uid=uid, spec=spec, namespace=namespace,
                                   image=config.worker_image, replicas=replicas,
                                   connection=connection)
    await workloads.apply_deployment(deployment, keep_replicas=current is not None)
    state = PoolState(name, uid, generation, spec, namespace, replicas, status=dict(status))
    redis_url = None
    ref = spec.redis.url_secret_ref
    if ref is not None:
        try:
            redis_url = await workloads.secret_value(namespace, ref.name, ref.key)
        except (LookupError, ApiException) as exc:
            await scaler.report_problem(state, "RedisSecretMissing", str(exc))
            raise kopf.TemporaryError(str(exc), delay=10) from None
    await scaler.upsert(state, redis_url)


@kopf.on.delete(GROUP, VERSION, WORKERPOOLS, optional=True)
async def pool_deleted(name: str, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Stop scaling; remove the Deployment (garbage collection does it too, via its owner)."""
    await memo.scaler.remove(name)
    namespace = (body.get("spec") or {}).get("namespace") or memo.config.worker_namespace
    await memo.workloads.delete_deployment(namespace, deployment_name(name))
