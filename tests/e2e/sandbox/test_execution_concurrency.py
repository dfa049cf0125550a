"""End to end (issue 10): a Workflow's ``spec.concurrency`` and an Execution's
``spec.priority`` through kubectl, the real operator and real workers. Waiting runs say
why on their status (reason ``ConcurrencyLimit``, shown by ``kubectl get -o wide``);
``Forbid`` fails a run with reason ``ConcurrencyForbidden`` and an Event."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e


def ready(found: dict[str, Any] | None) -> tuple[str, str] | None:
    for cond in ((found or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond["status"], cond["reason"]
    return None


def execution(name: str, customer: str, workflow: str = "per-customer",
              priority: int = 0) -> str:
    return f"""
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {{name: {name}}}
        spec:
          workflowRef: {{name: {workflow}}}
          inputs: {{customer: {customer}}}
          priority: {priority}
    """


async def test_queued_runs_say_why_and_run_one_at_a_time_per_customer_in_order(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    """Five runs for two customers with ``{limit: 1, key: inputs.customer, policy: Queue}``:
    the waiting ones are Pending with reason ConcurrencyLimit and a message counting the
    runs ahead (kubectl -o wide shows it); all succeed, one at a time per customer, in
    submission order."""
    order = [("run-1", "a"), ("run-2", "b"), ("run-3", "a"), ("run-4", "a"), ("run-5", "b")]
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: per-customer}
        spec:
          inputs: [{name: customer}]
          concurrency: {limit: 1, key: inputs.customer, policy: Queue}
          tasks:
            - {name: pause, type: wait, params: {duration: 6s}}
            - {name: done, type: set, dependsOn: [pause], params: {who: "${{ inputs.customer }}"}}
    """))
    # One by one, each once submitted: kopf handles objects independently, so Executions
    # created in the same instant may be submitted in either order (docs/concurrency.md).
    for name, customer in order:
        await kubectl.run("apply", "-f", "-", stdin=manifest(
            execution(name, customer, priority=5)))
        await eventually(lambda name=name: sandbox.get("executions", name),
                         until=lambda e: (e or {}).get("status", {}).get("executionId"),
                         timeout=60, interval=0.05, what=f"{name} to be submitted")
    waiting = await eventually(
        lambda: sandbox.get("executions", "run-4"),
        until=lambda e: ready(e) == ("False", "ConcurrencyLimit"), timeout=60, interval=0.1,
        what="run-4 to say it waits for its concurrency group")
    assert waiting["status"]["phase"] == "Pending"
    assert waiting["status"]["message"].startswith(
        "waiting for 2 earlier run(s) of key 'default/per-customer[a]'"), waiting["status"]
    wide = await kubectl.run("get", "executions", "-o", "wide")
    line = next(row for row in wide.stdout.splitlines() if row.startswith("run-4 "))
    assert "ConcurrencyLimit" in line and "waiting for" in line, wide.stdout

    async def all_succeeded() -> list[dict | None]:
        return [await sandbox.get("executions", name) for name, _ in order]

    final = await eventually(all_succeeded, until=lambda found: all(
        (f or {}).get("status", {}).get("phase") == "Succeeded" for f in found),
        timeout=120, interval=0.2, what="all five runs to succeed")
    for customer in "ab":
        runs = [f["status"] for f, (_, c) in zip(final, order, strict=True) if c == customer]
        for earlier, later in itertools.pairwise(runs):
            assert later["startedAt"] >= earlier["finishedAt"], (earlier, later)


async def test_forbid_fails_the_second_run_with_a_reason_and_an_event(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: only-one}
        spec:
          inputs: [{name: customer}]
          concurrency: {policy: Forbid}
          tasks:
            - {name: pause, type: wait, params: {duration: 30s}}
    """ + execution("only-one-1", "a", "only-one")))
    await eventually(lambda: sandbox.get("executions", "only-one-1"),
                     until=lambda e: (e or {}).get("status", {}).get("executionId"),
                     timeout=60, interval=0.1, what="only-one-1 to be submitted")
    await kubectl.run("apply", "-f", "-", stdin=manifest(execution("only-one-2", "b",
                                                                   "only-one")))
    refused = await eventually(
        lambda: sandbox.get("executions", "only-one-2"),
        until=lambda e: (e or {}).get("status", {}).get("phase") == "Failed", timeout=60,
        interval=0.1, what="only-one-2 to be refused")
    assert ready(refused) == ("False", "ConcurrencyForbidden")
    assert "its policy is Forbid" in refused["status"]["message"]
    events = await eventually(
        lambda: kubectl.run("get", "events", "--field-selector",
                            "involvedObject.name=only-one-2"),
        until=lambda r: "ConcurrencyForbidden" in r.stdout, what="a ConcurrencyForbidden Event")
    assert "Started" not in events.stdout
    await kubectl.run("patch", "execution", "only-one-1", "--type", "merge", "-p",
                      '{"spec": {"cancel": true}}')


async def test_operator_killed_while_runs_are_queued_loses_nothing_and_keeps_the_order(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    """Three runs of one key are submitted (two queued); the operator is killed (SIGKILL)
    and started again: every run succeeds once, one at a time, in submission order, and the
    statuses follow (the queue lives in PostgreSQL, not in the operator)."""
    names = ["keep-1", "keep-2", "keep-3"]
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: keep-order}
        spec:
          inputs: [{name: customer}]
          concurrency: {key: inputs.customer}
          tasks:
            - {name: pause, type: wait, params: {duration: 3s}}
    """))
    for name in names:
        await kubectl.run("apply", "-f", "-", stdin=manifest(
            execution(name, "k", "keep-order")))
        await eventually(lambda name=name: sandbox.get("executions", name),
                         until=lambda e: (e or {}).get("status", {}).get("executionId"),
                         timeout=60, interval=0.05, what=f"{name} to be submitted")
    await eventually(lambda: sandbox.get("executions", "keep-3"),
                     until=lambda e: ready(e) == ("False", "ConcurrencyLimit"), timeout=30,
                     interval=0.1, what="keep-3 to wait for its group")
    await sandbox.stop_operator(kill=True)
    await sandbox.start_operator()

    async def statuses() -> list[dict]:
        return [((await sandbox.get("executions", n)) or {}).get("status", {}) for n in names]

    final = await eventually(statuses, until=lambda found: all(
        s.get("phase") == "Succeeded" for s in found), timeout=120, interval=0.2,
        what="the three runs to succeed after the operator restart")
    for earlier, later in itertools.pairwise(final):
        assert later["startedAt"] >= earlier["finishedAt"], (earlier, later)
    assert all(ready({"status": s}) == ("True", "Succeeded") for s in final)
