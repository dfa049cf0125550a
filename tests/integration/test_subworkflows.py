"""Sub-workflows, workflow outputs and the run's time variables (issue 12 items 2 and 5),
with real worker processes and real Redis and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from conveyor_engine.api import Engine
from tests.support.polling import eventually
from tests.support.runs import finished

pytestmark = pytest.mark.integration





def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


async def register_slow_child(engine: Engine, name: str, pool: str, httpbin_url: str) -> None:
    """A child workflow ``name`` whose one task, ``call``, runs 10 s (httpbin /delay/10)."""
    await engine.register(name, {"pool": pool, "tasks": [
        {"name": "call", "type": "http", "params": {"url": f"{httpbin_url}/delay/10"}}]})


async def running_child(engine: Engine, execution_id: str, task: str) -> str:
    """The id of the child run that ``task`` of ``execution_id`` started, once it runs."""
    running = await eventually(
        lambda: engine.get(execution_id),
        until=lambda s: task in s.children and s.children[task][1] == "Running",
        timeout=30, what=f"the child of {task} to run")
    return running.children[task][0]


async def test_child_outputs_feed_the_parent(engine: Engine, start_workers, pool: str) -> None:
    """A parent's `workflow` task runs a child with inputs from an expression; the child's
    declared outputs are the task's outputs, read by a downstream task; the child has its
    own history linked to the parent task; the parent's outputs are stored and shown. The
    child's finish wakes the parent at once, not at the re-check period (an hour here)."""
    ns = unique("ns")
    await engine.register(f"{ns}/double", {"pool": pool, "inputs": [{"name": "n"}], "tasks": [
        {"name": "calc", "type": "set", "params": {"v": "${{ inputs.n * 2 }}"}}],
        "outputs": [{"name": "doubled", "value": "${{ tasks.calc.outputs.v }}"}]})
    parent = await engine.register(f"{ns}/parent", {"pool": pool, "tasks": [
        {"name": "seed", "type": "set", "params": {"n": 21}},
        {"name": "child", "type": "workflow", "dependsOn": ["seed"],
         "params": {"workflow": "double", "inputs": {"n": "${{ tasks.seed.outputs.n }}"}}},
        {"name": "use", "type": "set", "dependsOn": ["child"],
         "params": {"total": "${{ tasks.child.outputs.doubled + 1 }}"}}],
        "outputs": [{"name": "answer", "value": "${{ tasks.use.outputs.total }}"}]})
    start_workers(1, dispatch_interval_seconds=0.05, child_recheck_seconds=3600)
    began = time.monotonic()
    state = await finished(engine, (await engine.submit(parent)).execution_id)
    assert state.phase == "Succeeded", state.message
    assert time.monotonic() - began < 30
    assert state.task("use").outputs == {"total": 43}
    assert state.task("child").outputs == {"doubled": 42}
    assert state.outputs == {"answer": 43}
    child_id, child_phase = state.children["child"]
    assert child_phase == "Succeeded"
    child = await engine.get(child_id)
    assert child is not None and child.parent == (state.execution_id, "child", 1)
    assert child.workflow_name == f"{ns}/double" and child.outputs == {"doubled": 42}
    assert child.depth == 1


async def test_failing_child_fails_the_task_and_a_retry_starts_a_new_child(
        engine: Engine, start_workers, pool: str) -> None:
    ns = unique("ns")
    await engine.register(f"{ns}/bad", {"pool": pool,
                                        "inputs": [{"name": "zero", "default": 0}], "tasks": [
        {"name": "boom", "type": "set", "params": {"v": "${{ 1 / inputs.zero }}"}}]})
    parent = await engine.register(f"{ns}/p", {"pool": pool, "tasks": [
        {"name": "child", "type": "workflow", "params": {"workflow": "bad"},
         "retry": {"limit": 1, "backoff": "10ms", "jitter": "None"}}]})
    start_workers(1, dispatch_interval_seconds=0.05)
    state = await finished(engine, (await engine.submit(parent)).execution_id)
    assert state.phase == "Failed"
    task = state.task("child")
    assert task.attempt == 2 and "failed" in (task.error or "") and f"{ns}/bad" in task.error
    attempts = await engine.attempts(state.execution_id)
    assert [a.outcome for a in attempts] == ["Failed", "Failed"]


async def test_unknown_child_workflow_fails_the_task_naming_it(
        engine: Engine, start_workers, pool: str) -> None:
    ns = unique("ns")
    parent = await engine.register(f"{ns}/p", {"pool": pool, "tasks": [
        {"name": "child", "type": "workflow", "params": {"workflow": "missing"}}]})
    start_workers(1, dispatch_interval_seconds=0.05)
    state = await finished(engine, (await engine.submit(parent)).execution_id)
    assert state.phase == "Failed"
    assert f'no workflow "{ns}/missing" is registered' in (state.task("child").error or "")


async def test_cancelling_the_parent_cancels_the_child(
        engine: Engine, start_workers, pool: str, httpbin_url: str) -> None:
    """The child's http task is running (httpbin's /delay/10); cancelling the parent ends
    the child Cancelled with its running task interrupted (Temporal's TERMINATE)."""
    ns = unique("ns")
    await register_slow_child(engine, f"{ns}/slow", pool, httpbin_url)
    parent = await engine.register(f"{ns}/p", {"pool": pool, "tasks": [
        {"name": "child", "type": "workflow", "params": {"workflow": "slow"}}]})
    start_workers(1, dispatch_interval_seconds=0.05)
    execution_id = (await engine.submit(parent)).execution_id
    child_id = await running_child(engine, execution_id, "child")
    await eventually(lambda: engine.get(child_id),
                     until=lambda s: s.task("call").phase == "Running",
                     timeout=30, what="the child's task to run")
    assert await engine.cancel(execution_id, "stop")
    began = time.monotonic()
    child = await finished(engine, child_id)
    assert time.monotonic() - began < 8  # interrupted, not waited out
    assert child.phase == "Cancelled"
    assert child.task("call").phase == "Cancelled"
    assert f"parent execution {execution_id} was cancelled" in (child.message or "")


async def test_a_run_replaced_by_its_concurrency_group_cancels_its_child(
        engine: Engine, start_workers, pool: str, httpbin_url: str) -> None:
    """``policy: Replace`` cancels the open run for the new one; the replaced run's child
    (running httpbin's /delay/10) is cancelled with it, as a cancel would."""
    ns = unique("ns")
    await register_slow_child(engine, f"{ns}/slow", pool, httpbin_url)
    parent = await engine.register(f"{ns}/p", {
        "pool": pool, "concurrency": {"limit": 1, "policy": "Replace"},
        "tasks": [{"name": "child", "type": "workflow", "params": {"workflow": "slow"}}]})
    start_workers(1, dispatch_interval_seconds=0.05)
    first = (await engine.submit(parent)).execution_id
    child_id = await running_child(engine, first, "child")
    second = await engine.submit(parent)
    assert second.replaced == (first,)
    child = await finished(engine, child_id)
    assert child.phase == "Cancelled"
    assert f"parent execution {first} was cancelled" in (child.message or "")


async def test_the_parents_deadline_cancels_the_child(
        engine: Engine, start_workers, pool: str, httpbin_url: str) -> None:
    """The parent's activeDeadlineSeconds passes while its child's http task is running
    (httpbin's /delay/10): the dispatcher's sweep cancels the child too, interrupting its
    task, instead of letting it run on and succeed."""
    ns = unique("ns")
    await register_slow_child(engine, f"{ns}/slow", pool, httpbin_url)
    parent = await engine.register(f"{ns}/p", {"pool": pool, "activeDeadlineSeconds": 3,
                                               "tasks": [
        {"name": "c", "type": "workflow", "params": {"workflow": "slow"}}]})
    start_workers(1, dispatch_interval_seconds=0.05)
    began = time.monotonic()
    execution_id = (await engine.submit(parent)).execution_id
    child_id = await running_child(engine, execution_id, "c")
    state = await finished(engine, execution_id)
    assert state.phase == "Failed" and state.task("c").phase == "Cancelled"
    child = await finished(engine, child_id)
    assert time.monotonic() - began < 9  # interrupted, not waited out (10 s)
    assert child.phase == "Cancelled"
    assert child.task("call").phase == "Cancelled"
    assert f"parent execution {execution_id} passed its activeDeadlineSeconds" in (
        child.message or "")


async def test_depth_limit_names_the_chain(engine: Engine, start_workers, pool: str) -> None:
    """a -> b -> c with CONVEYOR_MAX_WORKFLOW_DEPTH=1: b runs as a's child, b's child c
    would be at depth 2: b's task fails naming the chain, and so does a."""
    ns = unique("ns")
    await engine.register(f"{ns}/c", {"pool": pool, "tasks": [
        {"name": "x", "type": "set", "params": {}}]})
    retry = {"limit": 3, "backoff": "10ms", "jitter": "None"}
    await engine.register(f"{ns}/b", {"pool": pool, "tasks": [
        {"name": "run-c", "type": "workflow", "params": {"workflow": "c"}, "retry": retry}]})
    a = await engine.register(f"{ns}/a", {"pool": pool, "tasks": [
        {"name": "run-b", "type": "workflow", "params": {"workflow": "b"}, "retry": retry}]})
    start_workers(1, dispatch_interval_seconds=0.05, max_workflow_depth=1)
    state = await finished(engine, (await engine.submit(a)).execution_id)
    assert state.phase == "Failed"
    child = await engine.get(state.children["run-b"][0])
    error = child.task("run-c").error or ""
    assert "deeper than the limit of 1" in error
    assert f"{ns}/a -> {ns}/b -> {ns}/c" in error
    # The parent says why (the cause travels up), and retries at every level do not
    # multiply the runs: one attempt of each, the depth failure is not retried.
    assert f"{ns}/a -> {ns}/b -> {ns}/c" in (state.task("run-b").error or "")
    assert [a.attempt for a in await engine.attempts(state.execution_id)] == [1]
    assert [a.attempt for a in await engine.attempts(child.execution_id)] == [1]


async def test_time_variables_in_expressions(engine: Engine, start_workers, pool: str) -> None:
    """execution.startedAt (the submit time) and execution.scheduledTime (a Schedule's
    tick; null otherwise) are CEL timestamps in expressions, the same on every attempt."""
    tick = datetime(2025, 3, 1, 6, 30, tzinfo=UTC)
    workflow = await engine.register(unique("times"), {"pool": pool, "tasks": [
        {"name": "t", "type": "set", "params": {
            "started": "${{ string(execution.startedAt) }}",
            "year": "${{ execution.startedAt.getFullYear() }}",
            "tickHour": "${{ execution.scheduledTime == null ? -1 : "
                        "execution.scheduledTime.getHours() }}",
            "day": "${{ execution.scheduledTime == null ? '' : "
                   "string(execution.scheduledTime - duration('24h')) }}"}}]})
    start_workers(1, dispatch_interval_seconds=0.05)
    before = datetime.now(UTC)
    scheduled = await finished(engine, (await engine.submit(
        workflow, scheduled_time=tick)).execution_id)
    plain = await finished(engine, (await engine.submit(workflow)).execution_id)
    out = scheduled.task("t").outputs
    assert out["tickHour"] == 6
    assert datetime.fromisoformat(out["day"]) == datetime(2025, 2, 28, 6, 30, tzinfo=UTC)
    started = datetime.fromisoformat(out["started"])
    assert abs((started - before).total_seconds()) < 30
    assert started == scheduled.created_at
    assert out["year"] == before.year
    assert plain.task("t").outputs["tickHour"] == -1
    assert scheduled.scheduled_time == tick


async def test_outputs_that_cannot_be_evaluated_fail_the_run(
        engine: Engine, start_workers, pool: str) -> None:
    workflow = await engine.register(unique("outs"), {"pool": pool, "tasks": [
        {"name": "a", "type": "set", "params": {"x": 1}}],
        "outputs": [{"name": "y", "value": "${{ tasks.a.outputs.nope }}"}]})
    start_workers(1, dispatch_interval_seconds=0.05)
    state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Failed" and state.reason == "OutputsFailed"
    assert (state.message or "").startswith("outputs.y:")
