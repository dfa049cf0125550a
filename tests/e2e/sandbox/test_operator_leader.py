"""End to end: two real operator processes, one Lease: only the leader acts, and a standby
takes over within about one lease duration after the leader is killed with SIGKILL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from conveyor_sandbox import services
from conveyor_sandbox.processes import ManagedProcess
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
LEASE = {"CONVEYOR_LEASE_DURATION_SECONDS": "4", "CONVEYOR_RENEW_DEADLINE_SECONDS": "3",
         "CONVEYOR_RETRY_PERIOD_SECONDS": "0.5"}
LEASE_URL = "/apis/coordination.k8s.io/v1/namespaces/default/leases/conveyor-operator"


def workflow(name: str) -> dict[str, Any]:
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {"tasks": [{"name": "a", "type": "set", "params": {"v": 1}},
                               {"name": "b", "type": "set", "params": {"v": 2},
                                "dependsOn": ["a"]}]}}


def execution(name: str, workflow_name: str) -> dict[str, Any]:
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Execution",
            "metadata": {"name": name}, "spec": {"workflowRef": {"name": workflow_name}}}


async def api_get(sandbox: Sandbox, path: str) -> dict[str, Any]:
    async with sandbox._session.get(sandbox.api.url + path) as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def started_events(sandbox: Sandbox, name: str) -> list[dict[str, Any]]:
    events = await api_get(sandbox, "/api/v1/namespaces/default/events")
    return [e for e in events["items"]
            if e["involvedObject"]["name"] == name and e["reason"] == "Started"]


def watches(sandbox: Sandbox, since: int, resource: str = "executions") -> int:
    return sum(1 for r in sandbox.api.requests[since:]
               if r.verb == "watch" and r.resource == resource)


async def test_one_of_two_operators_acts_and_the_standby_takes_over_after_kill_9(
    redis_url: str, postgres_server_url: str, tmp_path: Path
) -> None:
    async with services.fresh_database(postgres_server_url, "conveyor_leader") as database:
        config = SandboxConfig(workdir=tmp_path / "sandbox", redis_url=redis_url,
                               database_url=database, workers=1, operator_env=LEASE)
        async with Sandbox(config) as sandbox:
            leader_lease = await api_get(sandbox, LEASE_URL)
            first_holder = leader_lease["spec"]["holderIdentity"]
            env = {"CONVEYOR_REDIS_URL": sandbox.redis_url,
                   "CONVEYOR_DATABASE_URL": sandbox.database_url,
                   "CONVEYOR_KEY_PREFIX": sandbox.key_prefix,
                   "KUBECONFIG": str(sandbox.kubeconfig),
                   "CONVEYOR_WORKER_NAMESPACE": "default", **LEASE}
            second = ManagedProcess("operator-2", "conveyor_operator", ["run"], env,
                                    tmp_path / "operator-2.log")
            try:
                await eventually(lambda: _async(second.log()),
                                 until=lambda log: "is held by " + first_holder in log,
                                 timeout=60, what="the second operator to wait as a standby")
                mark = len(sandbox.api.requests)
                await sandbox.apply_objects([workflow("ha"), execution("ha-1", "ha"),
                                             execution("ha-2", "ha")])
                done = await sandbox.wait_finished([("default", "ha-1"), ("default", "ha-2")],
                                                   timeout=60)
                assert [d["status"]["phase"] for d in done] == ["Succeeded"] * 2
                for name in ("ha-1", "ha-2"):
                    await eventually(lambda n=name: started_events(sandbox, n),
                                     until=lambda found: len(found) >= 1,
                                     what=f"the Started Event of {name}")
                # The standby opened no watch, so it cannot have reconciled anything: every
                # watch since it started is the leader's (none: its watches were older).
                assert watches(sandbox, mark) == 0
                second.check_alive()
                assert "Handler" not in second.log()
                for name in ("ha-1", "ha-2"):
                    assert len(await started_events(sandbox, name)) == 1, name

                # kill -9 the leader: the standby takes over within about a lease duration.
                mark = len(sandbox.api.requests)
                killed = time.monotonic()
                await sandbox.stop_operator(kill=True)
                await eventually(lambda: _async(watches(sandbox, mark)), until=lambda n: n > 0,
                                 timeout=30, interval=0.1,
                                 what="the standby to take over and watch Executions")
                took = time.monotonic() - killed
                assert took < 4 + 4, f"hand-over took {took:.1f}s"
                lease = await api_get(sandbox, LEASE_URL)
                assert lease["spec"]["holderIdentity"] != first_holder
                assert lease["spec"]["leaseTransitions"] == 1

                await sandbox.apply_objects([execution("ha-3", "ha")])
                # (not sandbox.wait_finished: it refuses to wait with the sandbox's operator
                # stopped; the second process is the operator now)
                found = await eventually(lambda: sandbox.get("executions", "ha-3"),
                                         until=lambda e: (e or {}).get("status", {}).get(
                                             "phase") == "Succeeded",
                                         timeout=60, what="ha-3 to succeed")
                assert found["status"]["tasks"][-1]["phase"] == "Succeeded"
                assert len(await eventually(lambda: started_events(sandbox, "ha-3"),
                                            what="the Started Event of ha-3")) == 1
            finally:
                # In a thread: the emulated API server runs on this event loop and must
                # answer the stopping operator's release of the Lease.
                await asyncio.to_thread(second.stop)
            # A graceful stop (SIGTERM) releases the Lease: a standby takes over at once.
            released = await api_get(sandbox, LEASE_URL)
            assert released["spec"]["holderIdentity"] in ("", None), released["spec"]


async def _async(value: Any) -> Any:
    return value
