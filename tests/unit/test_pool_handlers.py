"""The WorkerPool handler against fake workloads: invalid specs (status, what is kept)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from conveyor_engine.keys import Keys
from conveyor_operator.pools.handlers import pool_changed
from conveyor_operator.pools.scaler import PoolScaler
from conveyor_operator.pools.workloads import Size

NAME = "conveyor-worker-p"


class FakeWorkloads:
    """Deployments in a dict, and the calls that changed them."""

    def __init__(self) -> None:
        self.deployments: dict[tuple[str, str], Size] = {}
        self.calls: list[tuple[str, str]] = []

    async def size(self, namespace: str, name: str) -> Size | None:
        return self.deployments.get((namespace, name))

    async def replicas(self, namespace: str, name: str) -> int | None:
        found = self.deployments.get((namespace, name))
        return None if found is None else found.replicas

    async def apply_deployment(self, body: dict[str, Any], *, keep_replicas: bool) -> None:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        self.calls.append(("apply", namespace))
        old = self.deployments.get((namespace, name))
        replicas = old.replicas if keep_replicas and old else body["spec"]["replicas"]
        self.deployments[(namespace, name)] = Size(replicas, old.ready if old else 0)

    async def delete_deployment(self, namespace: str, name: str) -> None:
        self.calls.append(("delete", namespace))
        self.deployments.pop((namespace, name), None)


class FakeKube:
    """Records status patches (always accepted)."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_status(self, ref: Any, patch: dict[str, Any]) -> bool:
        self.patches.append(patch)
        return True


class Pool:
    """One WorkerPool, its operator memo, and the status the operator wrote for it."""

    def __init__(self) -> None:
        self.workloads = FakeWorkloads()
        self.kube = FakeKube()
        self.memo = self.new_memo()
        self.generation = 0

    def new_memo(self) -> SimpleNamespace:
        """A memo as after an operator (re)start: a scaler that knows no pools yet."""
        engine = SimpleNamespace(redis=object())
        config = SimpleNamespace(worker_namespace="default", key_prefix="t",
                                 worker_connection_secret=None, redis_url="redis://r",
                                 database_url="postgresql://d", worker_image="img")
        scaler = PoolScaler(engine, self.kube, self.workloads, keys=Keys("t"))  # type: ignore[arg-type]
        return SimpleNamespace(config=config, scaler=scaler, workloads=self.workloads)

    @property
    def status(self) -> dict[str, Any]:
        state = self.memo.scaler.pools.get("p")
        return dict(state.status) if state else {}

    @property
    def ready(self) -> dict[str, Any]:
        return {c["type"]: c for c in self.status["conditions"]}["Ready"]

    async def change(self, spec: dict[str, Any], status: dict[str, Any] | None = None) -> None:
        """A spec change as kopf hands it to the handler (a new generation)."""
        self.generation += 1
        await self.retry(spec, status)

    async def retry(self, spec: dict[str, Any], status: dict[str, Any] | None = None) -> None:
        """kopf calling the handler again for the same generation."""
        await pool_changed(body={"spec": spec}, name="p", uid="uid-p",
                           meta={"generation": self.generation},
                           status=self.status if status is None else status, memo=self.memo)


async def test_invalid_spec_keeps_the_deployment_and_reports_its_size() -> None:
    pool = Pool()
    await pool.change({"minReplicas": 2, "maxReplicas": 3})
    pool.workloads.deployments[("default", NAME)] = Size(3, 3)  # scaled up meanwhile
    pool.memo.scaler.pools["p"].replicas = 3
    calls = list(pool.workloads.calls)

    await pool.change({"minReplicas": 11})

    assert pool.workloads.calls == calls, "an invalid spec must not touch the Deployment"
    assert pool.workloads.deployments[("default", NAME)] == Size(3, 3)
    assert (pool.status["currentReplicas"], pool.status["readyReplicas"]) == (3, 3)
    assert pool.status["observedGeneration"] == 2
    assert pool.ready["status"] == "False" and pool.ready["reason"] == "InvalidSpec"
    assert pool.ready["message"].endswith("; keeping default/conveyor-worker-p at 3 replica(s)")


async def test_invalid_spec_of_a_new_pool_reports_zero_and_creates_nothing() -> None:
    pool = Pool()
    await pool.change({"minReplicas": 11})
    assert pool.workloads.deployments == {}
    assert pool.status["currentReplicas"] == 0
    assert pool.ready["reason"] == "InvalidSpec" and "keeping" not in pool.ready["message"]
