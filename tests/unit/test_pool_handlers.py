"""The WorkerPool handler against fake workloads: invalid specs, moves between namespaces and
Deployments that cannot be applied (status, what is kept, what is deleted, retries)."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import kopf
import pytest
from kubernetes_asyncio.client.exceptions import ApiException

from conveyor_operator.pools.handlers import pool_changed, pool_deleted, pool_event
from conveyor_operator.pools.scaler import PoolScaler
from conveyor_operator.pools.workloads import Size
from conveyor_operator.waits import MARKER

NAME = "conveyor-worker-p"


def api_error(status: int, reason: str, details: dict[str, Any]) -> ApiException:
    """An ApiException as kubernetes_asyncio raises it, with the server's Status as body."""
    exc = ApiException(status=status, reason=reason)
    exc.body = json.dumps({"kind": "Status", "status": "Failure", "reason": reason,
                           "message": f"{reason} (test)", "details": details}).encode()
    return exc


class FakeWorkloads:
    """Deployments in a dict; namespaces that exist; namespaces the operator may not touch."""

    def __init__(self, namespaces: set[str]) -> None:
        self.namespaces = namespaces
        self.forbidden: set[str] = set()
        self.deployments: dict[tuple[str, str], Size] = {}
        self.calls: list[tuple[str, str]] = []

    async def size(self, namespace: str, name: str) -> Size | None:
        return self.deployments.get((namespace, name))

    async def replicas(self, namespace: str, name: str) -> int | None:
        found = self.deployments.get((namespace, name))
        return None if found is None else found.replicas

    async def apply_deployment(self, body: dict[str, Any], *, keep_replicas: bool) -> None:
        namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
        if namespace in self.forbidden:
            raise api_error(403, "Forbidden", {"kind": "deployments", "group": "apps"})
        if namespace not in self.namespaces:
            raise api_error(404, "NotFound", {"kind": "namespaces", "name": namespace})
        self.calls.append(("apply", namespace))
        old = self.deployments.get((namespace, name))
        replicas = old.replicas if keep_replicas and old else body["spec"]["replicas"]
        self.deployments[(namespace, name)] = Size(replicas, old.ready if old else 0)

    async def delete_deployment(self, namespace: str, name: str) -> None:
        self.calls.append(("delete", namespace))
        self.deployments.pop((namespace, name), None)


class FakeQueues:
    """Stands for the engine's pool queue reader; these tests never evaluate a pool."""

    async def close(self) -> None:
        return None


class FakeKube:
    """Records status patches (always accepted)."""

    def __init__(self) -> None:
        self.patches: list[dict[str, Any]] = []

    async def patch_status(self, ref: Any, patch: dict[str, Any], known: dict[str, Any]) -> bool:
        self.patches.append(patch)
        return True


class Pool:
    """One WorkerPool, its operator memo, and the status the operator wrote for it."""

    def __init__(self, namespaces: frozenset[str] = frozenset({"default"})) -> None:
        self.workloads = FakeWorkloads(set(namespaces))
        self.kube = FakeKube()
        self.memo = self.new_memo()
        self.generation = 0

    def new_memo(self) -> SimpleNamespace:
        """A memo as after an operator (re)start: a scaler that knows no pools yet."""
        engine = SimpleNamespace(pool_queues=lambda redis_url=None: FakeQueues())
        config = SimpleNamespace(worker_namespace="default", key_prefix="t",
                                 worker_connection_secret=None, redis_url="redis://r",
                                 database_url="postgresql://d", worker_image="img")
        scaler = PoolScaler(engine, self.kube, self.workloads)  # type: ignore[arg-type]
        follower = SimpleNamespace(refreshes=0)
        follower.refresh_all = lambda: setattr(follower, "refreshes", follower.refreshes + 1)
        waiting = SimpleNamespace(pokes=0)
        waiting.poke = lambda: setattr(waiting, "pokes", waiting.pokes + 1)
        return SimpleNamespace(config=config, scaler=scaler, workloads=self.workloads,
                               follower=follower, waiting=waiting)

    @property
    def status(self) -> dict[str, Any]:
        state = self.memo.scaler.pools.get("p")
        return dict(state.status) if state else {}

    @property
    def ready(self) -> dict[str, Any]:
        return {c["type"]: c for c in self.status["conditions"]}["Ready"]

    @property
    def scaled_in(self) -> str | None:
        """The namespace the scaler scales the pool in; None while the pool has a problem
        (the scaler writes a healthy pool's status itself, on its next evaluation)."""
        state = self.memo.scaler.pools["p"]
        return None if state.problem else state.namespace

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


async def test_invalid_spec_naming_another_namespace_reports_where_the_pool_runs() -> None:
    pool = Pool(frozenset({"default", "other"}))
    await pool.change({"minReplicas": 1})
    await pool.change({"minReplicas": 11, "namespace": "other"})
    assert pool.workloads.calls == [("apply", "default")]
    assert pool.status["deployment"] == "default/conveyor-worker-p"
    assert pool.status["currentReplicas"] == 1


async def test_moving_deletes_the_old_deployment_after_creating_the_new_one() -> None:
    pool = Pool(frozenset({"default", "other"}))
    await pool.change({"minReplicas": 1})
    await pool.change({"minReplicas": 1, "namespace": "other"})
    assert pool.workloads.calls == [("apply", "default"), ("apply", "other"),
                                    ("delete", "default")]
    assert list(pool.workloads.deployments) == [("other", NAME)]
    assert pool.scaled_in == "other"


async def test_moving_while_the_operator_was_down_uses_the_status_to_find_the_old_one() -> None:
    pool = Pool(frozenset({"default", "other"}))
    await pool.change({"minReplicas": 1})
    pool.memo = pool.new_memo()  # restart: the scaler knows nothing, the status remains
    await pool.change({"minReplicas": 1, "namespace": "other"},
                      status={"deployment": "default/conveyor-worker-p"})
    assert ("delete", "default") in pool.workloads.calls
    assert list(pool.workloads.deployments) == [("other", NAME)]


async def test_an_unchanged_namespace_deletes_nothing() -> None:
    pool = Pool()
    await pool.change({"minReplicas": 1})
    await pool.change({"minReplicas": 2})
    assert [c for c in pool.workloads.calls if c[0] == "delete"] == []


async def test_missing_namespace_is_a_condition_and_a_quiet_retry() -> None:
    pool = Pool()
    with pytest.raises(kopf.TemporaryError) as raised:
        await pool.change({"namespace": "nowhere", "minReplicas": 0})
    assert str(raised.value).startswith(f"{MARKER}NamespaceNotFound: ")
    assert raised.value.delay == 10
    assert pool.ready["status"] == "False" and pool.ready["reason"] == "NamespaceNotFound"
    assert pool.ready["message"] == ("namespace nowhere not found; Deployment "
                                     "conveyor-worker-p is created there once it exists")
    assert pool.ready["observedGeneration"] == pool.status["observedGeneration"] == 1
    assert pool.status["currentReplicas"] == 0

    pool.workloads.namespaces.add("nowhere")
    await pool.retry({"namespace": "nowhere", "minReplicas": 0})
    assert pool.workloads.calls == [("apply", "nowhere")]
    assert pool.scaled_in == "nowhere"


async def test_moving_to_a_missing_namespace_keeps_the_old_deployment_until_it_exists() -> None:
    pool = Pool()
    await pool.change({"minReplicas": 1, "maxReplicas": 4})
    pool.workloads.deployments[("default", NAME)] = Size(2, 2)
    with pytest.raises(kopf.TemporaryError):
        await pool.change({"minReplicas": 1, "maxReplicas": 4, "namespace": "later"})
    assert pool.workloads.deployments == {("default", NAME): Size(2, 2)}
    assert pool.ready["reason"] == "NamespaceNotFound"
    assert pool.ready["observedGeneration"] == 2
    assert pool.ready["message"].endswith("; keeping default/conveyor-worker-p at 2 replica(s)")
    assert (pool.status["deployment"], pool.status["currentReplicas"]) == (
        "default/conveyor-worker-p", 2)

    with pytest.raises(kopf.TemporaryError):  # retried before the namespace exists
        await pool.retry({"minReplicas": 1, "maxReplicas": 4, "namespace": "later"})
    pool.workloads.namespaces.add("later")
    await pool.retry({"minReplicas": 1, "maxReplicas": 4, "namespace": "later"})
    assert list(pool.workloads.deployments) == [("later", NAME)]
    assert pool.scaled_in == "later"


async def test_a_forbidden_namespace_is_a_deployment_failure_and_an_error_retry() -> None:
    pool = Pool(frozenset({"default", "locked"}))
    pool.workloads.forbidden.add("locked")
    with pytest.raises(kopf.TemporaryError) as raised:
        await pool.change({"namespace": "locked"})
    assert MARKER not in str(raised.value)  # a fault: kopf logs it at ERROR
    assert pool.ready["reason"] == "DeploymentFailed"
    assert pool.ready["message"] == ("cannot apply Deployment locked/conveyor-worker-p: "
                                     "Forbidden (test)")


async def test_deleting_a_pool_mid_move_deletes_both_deployments() -> None:
    pool = Pool()
    await pool.change({"minReplicas": 1})
    with pytest.raises(kopf.TemporaryError):
        await pool.change({"minReplicas": 1, "namespace": "later"})
    await pool_deleted(name="p", body={"spec": {"namespace": "later"}}, status=pool.status,
                       memo=pool.memo)
    assert ("delete", "default") in pool.workloads.calls
    assert ("delete", "later") in pool.workloads.calls
    assert pool.workloads.deployments == {}
    assert "p" not in pool.memo.scaler.pools


async def test_a_deleted_event_forgets_the_pool_it_names_and_no_successor() -> None:
    pool = Pool()
    await pool.change({"minReplicas": 1})
    assert pool.memo.follower.refreshes == 1  # a new pool: waiting Executions re-checked
    # A DELETED event of an older object with the same name leaves the current pool alone.
    await pool_event(event={"type": "DELETED"}, name="p", uid="uid-older", memo=pool.memo)
    assert "p" in pool.memo.scaler.pools
    await pool_event(event={"type": "MODIFIED"}, name="p", uid="uid-p", memo=pool.memo)
    assert "p" in pool.memo.scaler.pools
    await pool_event(event={"type": "DELETED"}, name="p", uid="uid-p", memo=pool.memo)
    assert "p" not in pool.memo.scaler.pools
    assert pool.memo.follower.refreshes == 3


async def test_a_bad_egress_cidr_is_an_invalid_spec_naming_the_field() -> None:
    pool = Pool()
    await pool.change({"egress": {"allow": ["10.0.0.0/8"], "deny": ["fd00::/8", "10.0.0.0/33"]}})
    assert pool.workloads.deployments == {}
    assert pool.ready["reason"] == "InvalidSpec"
    assert pool.ready["message"].startswith("spec.egress.deny.1: ")
    assert "'10.0.0.0/33' is not a CIDR" in pool.ready["message"]
