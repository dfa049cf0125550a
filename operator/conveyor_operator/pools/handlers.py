"""kopf handlers of WorkerPools: keep the pool's Deployment matching its spec.

Scaling and WorkerPool status belong to :class:`.scaler.PoolScaler`; these handlers only
(re)build the Deployment's template and register the pool with the scaler.
"""

from __future__ import annotations

import logging
from typing import Any

import kopf
from kubernetes_asyncio.client.exceptions import ApiException
from pydantic import ValidationError

from ..resources import GROUP, VERSION
from .deployment import Connection, deployment_name, worker_deployment
from .model import WorkerPoolSpec
from .scaler import PoolScaler, PoolState

log = logging.getLogger(__name__)
WORKERPOOLS = "workerpools"


def _spec_problem(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"spec.{where}: {err['msg']}" if where else f"spec: {err['msg']}")
    return "; ".join(parts)


@kopf.on.resume(GROUP, VERSION, WORKERPOOLS)
@kopf.on.create(GROUP, VERSION, WORKERPOOLS)
@kopf.on.update(GROUP, VERSION, WORKERPOOLS, field="spec")
async def pool_changed(body: kopf.Body, name: str, uid: str, meta: kopf.Meta,
                       status: kopf.Status, memo: kopf.Memo, **_: Any) -> None:
    """Build or update the pool's Deployment and hand the pool to the scaler."""
    config = memo.config
    scaler: PoolScaler = memo.scaler
    generation = meta.get("generation")
    raw = dict(body.get("spec") or {})
    namespace = raw.get("namespace") or config.worker_namespace
    try:
        spec = WorkerPoolSpec.model_validate(raw)
    except ValidationError as exc:
        state = PoolState(name, uid, generation, WorkerPoolSpec(), namespace, 0,
                          status=dict(status))
        await scaler.report_problem(state, "InvalidSpec", _spec_problem(exc))
        return
    workloads = memo.workloads
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
