"""End to end: kubectl -> emulated API -> real operator -> real worker -> Redis + PostgreSQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conveyor_engine.api import Engine
from conveyor_operator.diffbase import DIGESTS_KEY, essence_digest
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[3]


async def phase(sandbox: Sandbox, name: str) -> str | None:
    found = await sandbox.get("executions", name)
    return (found or {}).get("status", {}).get("phase")


async def finished(sandbox: Sandbox, name: str, timeout: float = 60) -> dict:
    done = await sandbox.wait_finished([("default", name)], timeout)
    return done[0]


async def test_examples_applied_with_kubectl_succeed_with_columns_summary_events_and_rows(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    applied = await kubectl.run("apply", "-f", str(ROOT / "examples"))
    assert "execution.conveyor.dev/data-pipeline-example created" in applied.stdout
    names = ["data-pipeline-example", "fan-out-fan-in-example", "retry-recovers-example"]
    done = await sandbox.wait_finished([("default", n) for n in names], timeout=120)
    assert [d["status"]["phase"] for d in done] == ["Succeeded"] * 3, done

    table = (await kubectl.run("get", "executions")).stdout
    header = table.splitlines()[0].split()
    assert header == ["NAME", "WORKFLOW", "PHASE", "PROGRESS", "DURATION", "AGE"]
    row = next(line for line in table.splitlines() if line.startswith("data-pipeline-example"))
    assert re.search(r"data-pipeline\s+Succeeded\s+4/4\s+\d+(ms|s)", row), row
    wide = (await kubectl.run("get", "executions", "-o", "wide")).stdout
    assert wide.splitlines()[0].split()[-2:] == ["REASON", "MESSAGE"]
    row = next(line for line in wide.splitlines() if line.startswith("data-pipeline-example"))
    assert re.search(r"Succeeded\s+all 4 task\(s\) succeeded or were skipped$", row), row
    assert "fan-out-fan-in" in (await kubectl.run("get", "conveyor")).stdout  # the category
    assert "data-pipeline-example" in (await kubectl.run("get", "cvex")).stdout  # the short name

    pipeline = done[0]["status"]
    assert [(t["name"], t["phase"], t["attempts"]) for t in pipeline["tasks"]] == [
        ("extract", "Succeeded", 1), ("transform", "Succeeded", 1), ("load", "Succeeded", 1),
        ("verify", "Succeeded", 1)]
    ready = {c["type"]: c for c in pipeline["conditions"]}["Ready"]
    assert ready["status"] == "True" and ready["observedGeneration"] == 1
    flaky = {t["name"]: t for t in done[2]["status"]["tasks"]}["flaky"]
    assert flaky["attempts"] == 3

    # The Event follows the status write that showed Succeeded: poll for it.
    await eventually(lambda: kubectl.run("get", "events", "--field-selector",
                                         "involvedObject.name=data-pipeline-example"),
                     until=lambda r: "Started" in r.stdout and "Succeeded" in r.stdout,
                     what="the Started and Succeeded events")

    state = await sandbox_engine.get(pipeline["executionId"])
    assert state.phase == "Succeeded"
    assert state.task("verify").outputs == {
        "slidesStored": True, "summary": "Sample Slide Show by Ada Lovelace"}
    attempts = await sandbox_engine.attempts(pipeline["executionId"])
    assert sorted(a.task for a in attempts) == ["extract", "load", "transform", "verify"]
    retried = await sandbox_engine.attempts(done[2]["status"]["executionId"])
    assert [(a.task, a.attempt, a.outcome) for a in retried if a.task == "flaky"] == [
        ("flaky", 1, "Failed"), ("flaky", 2, "Failed"), ("flaky", 3, "Succeeded")]


BAD_WORKFLOWS = {
    "cycle": ("[{name: a, type: set, dependsOn: [b]}, {name: b, type: set, dependsOn: [a]}]",
              "cycle: a -> b -> a"),
    "missing-dep": ("[{name: a, type: set, dependsOn: [nope]}]", 'no task named "nope"'),
    "bad-expression": ("[{name: a, type: set, params: {v: '${{ inputs. }}'}}]",
                       'task "a": params.v'),
    "foreign-ref": ("[{name: a, type: set}, {name: b, type: set, params: "
                    "{v: '${{ tasks.a.outputs }}'}}]", 'which is not upstream of "b"'),
}


@pytest.mark.parametrize("case", sorted(BAD_WORKFLOWS))
async def test_invalid_workflow_reports_ready_false_with_task_and_field(
    sandbox: Sandbox, kubectl: Kubectl, case: str
) -> None:
    tasks, expected = BAD_WORKFLOWS[case]
    await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {{name: bad-{case}}}
        spec:
          tasks: {tasks}
    """))
    found = await eventually(lambda: sandbox.get("workflows", f"bad-{case}"),
                             until=lambda w: w and w.get("status", {}).get("conditions"),
                             what="the workflow's status")
    ready = {c["type"]: c for c in found["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert expected in ready["message"], ready["message"]
    table = (await kubectl.run("get", "workflows", f"bad-{case}")).stdout
    assert re.search(rf"bad-{case}\s+False\s+InvalidSpec", table), table


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        # Any well-formed type name passes the schema (task types are installed packages:
        # an unknown one is InvalidSpec from the compiler); a malformed one is refused here.
        ("kind: Workflow\nmetadata: {name: unknown-type}\nspec:\n  tasks: [{name: a, type: FTP!}]",
         "spec.tasks[0].type: Invalid value"),
        ("kind: Execution\nmetadata: {name: no-ref}\nspec: {inputs: {}}",
         "spec.workflowRef: Required value"),
    ],
    ids=["unknown-type", "missing-workflow-ref"],
)
async def test_schema_rejects_what_it_can_at_apply_time(
    kubectl: Kubectl, doc: str, expected: str
) -> None:
    result = await kubectl.run("apply", "-f", "-",
                           stdin="apiVersion: conveyor.dev/v1alpha1\n" + doc + "\n",
                           check=False)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr


async def test_execution_waits_for_a_missing_workflow_then_runs(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: early-bird}
        spec: {workflowRef: {name: late-workflow}}
    """))
    waiting = await eventually(lambda: sandbox.get("executions", "early-bird"),
                               until=lambda e: e and e.get("status", {}).get("conditions"),
                               what="the waiting condition")
    ready = {c["type"]: c for c in waiting["status"]["conditions"]}["Ready"]
    assert waiting["status"]["phase"] == "Pending"
    assert ready["reason"] == "WorkflowNotFound" and "late-workflow" in ready["message"]
    # The wait is not a kopf retry loop (no retry bookkeeping, no log line per retry): the
    # Workflow's handler wakes the waiting Execution (test_operator_deletes_and_waits.py
    # counts the writes).
    found = await sandbox.get("executions", "early-bird")
    assert "conveyor.dev/execution_created" not in found["metadata"]["annotations"]
    assert not [line for line in sandbox.operator.log().splitlines()
                if "WorkflowNotFound: workflow 'late-workflow'" in line and "ERROR" in line]

    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: late-workflow}
        spec: {tasks: [{name: only, type: set, params: {v: 1}}]}
    """))
    assert (await finished(sandbox, "early-bird"))["status"]["phase"] == "Succeeded"


async def test_kubectl_wait_for_ready_returns_when_the_execution_succeeds(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: pause}
        spec: {tasks: [{name: nap, type: wait, params: {duration: 1s}}]}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: pause-once}
        spec: {workflowRef: {name: pause}}
    """))
    result = await kubectl.run("wait", "--for=condition=Ready", "--timeout=60s",
                              "execution/pause-once", timeout=90)
    assert "condition met" in result.stdout
    assert await phase(sandbox, "pause-once") == "Succeeded"


async def test_busy_execution_costs_a_bounded_number_of_status_writes(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    links = [f"{{name: s{i}, type: set, params: {{i: {i}}}" +
             (f", dependsOn: [s{i - 1}]}}" if i else "}") for i in range(40)]
    chain = ", ".join(links)
    await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {{name: long-chain}}
        spec: {{tasks: [{chain}]}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {{name: long-chain-run}}
        spec: {{workflowRef: {{name: long-chain}}}}
    """))
    done = await finished(sandbox, "long-chain-run")
    assert done["status"]["phase"] == "Succeeded"
    assert done["status"]["progress"] == "40/40"
    writes = [r for r in sandbox.api.requests
              if r.resource == "executions" and r.name == "long-chain-run"
              and r.subresource == "status" and r.verb in ("patch", "update")]
    # 40 tasks produce over 120 engine events; coalescing turns them into a few writes:
    # at most one per status interval (0.5 s) while it runs, plus the first and the last.
    elapsed = _seconds(done["status"]["duration"])
    assert 1 <= len(writes) <= max(15, elapsed / 0.5 + 6), (len(writes), elapsed)


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?", duration)
    assert match, duration
    h, m, s, ms = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


async def test_operator_restart_mid_execution_runs_nothing_twice(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: restartable}
        spec:
          tasks:
            - {name: first, type: set, params: {v: 1}}
            - {name: slow, type: wait, dependsOn: [first], params: {duration: 3s}}
            - {name: last, type: set, dependsOn: [slow], params: {v: 2}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: restartable-run}
        spec: {workflowRef: {name: restartable}}
    """))
    await eventually(lambda: phase(sandbox, "restartable-run"), until=lambda p: p == "Running",
                     what="the execution to run")
    # Events are best effort, as in Kubernetes: one the operator is killed before posting
    # is lost (the status is the record). What must not happen is a second Started.
    await eventually(lambda: kubectl.run("get", "events", "--field-selector",
                                         "involvedObject.name=restartable-run"),
                     until=lambda r: "Started" in r.stdout, what="the Started event")
    await sandbox.stop_operator(kill=True)
    await sandbox.start_operator()

    done = await finished(sandbox, "restartable-run")
    assert done["status"]["phase"] == "Succeeded"
    attempts = await sandbox_engine.attempts(done["status"]["executionId"])
    assert sorted((a.task, a.attempt) for a in attempts) == [
        ("first", 1), ("last", 1), ("slow", 1)]
    count = await sandbox_engine.store._pool.fetchval(
        "SELECT count(*) FROM executions WHERE idempotency_key = $1", done["metadata"]["uid"])
    assert count == 1
    events = await eventually(lambda: kubectl.run("get", "events", "--field-selector",
                                                  "involvedObject.name=restartable-run"),
                              until=lambda r: "Succeeded" in r.stdout,
                              what="the Succeeded event")
    assert events.stdout.count("Started") == 1


async def test_deleting_a_running_execution_cancels_it_and_keeps_history(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: long-nap}
        spec:
          tasks:
            - {name: first, type: set, params: {v: 1}}
            - {name: nap, type: wait, dependsOn: [first], params: {duration: 60s}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: long-nap-run}
        spec: {workflowRef: {name: long-nap}}
    """))
    running = await eventually(lambda: sandbox.get("executions", "long-nap-run"),
                               until=lambda e: e and e.get("status", {}).get("progress") == "1/2",
                               what="the first task to finish")
    execution_id = running["status"]["executionId"]
    await kubectl.run("delete", "execution", "long-nap-run", "--timeout=60s", timeout=90)
    assert await sandbox.get("executions", "long-nap-run") is None

    state = await sandbox_engine.get(execution_id)
    assert state.phase == "Cancelled"
    assert state.task("nap").phase == "Cancelled"
    assert [(a.task, a.outcome) for a in await sandbox_engine.attempts(execution_id)] == [
        ("first", "Succeeded")]


async def test_execution_applied_with_a_workflow_edit_runs_the_edited_version(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine
) -> None:
    def both(version: int, run: str) -> str:
        return manifest(f"""
            apiVersion: conveyor.dev/v1alpha1
            kind: Workflow
            metadata: {{name: evolving}}
            spec: {{tasks: [{{name: only, type: set, params: {{version: {version}}}}}]}}
            ---
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {{name: {run}}}
            spec: {{workflowRef: {{name: evolving}}}}
        """)

    # Each edit is applied in one file with its Execution, and nothing newer exists until
    # that Execution has finished: it must run exactly the version applied with it.
    for version in range(1, 4):
        await kubectl.run("apply", "-f", "-", stdin=both(version, f"evolving-{version}"))
        done = await finished(sandbox, f"evolving-{version}")
        state = await sandbox_engine.get(done["status"]["executionId"])
        assert state.task("only").outputs == {"version": version}
        assert done["status"]["workflowHash"] == state.workflow_hash

    # Applied back to back, an Execution may start after later edits have landed: it runs
    # the Workflow as the operator finds it at start (as a Tekton PipelineRun resolves its
    # Pipeline), never a version older than the one applied with it.
    for version in range(4, 8):
        await kubectl.run("apply", "-f", "-", stdin=both(version, f"evolving-{version}"))
    for version in range(4, 8):
        done = await finished(sandbox, f"evolving-{version}")
        state = await sandbox_engine.get(done["status"]["executionId"])
        assert state.task("only").outputs["version"] >= version, (version, state.task("only"))
        assert done["status"]["workflowHash"] == state.workflow_hash


async def test_execution_on_a_pool_that_does_not_exist_says_so(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: misrouted}
        spec: {pool: hevy, tasks: [{name: only, type: set}]}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: misrouted-run}
        spec: {workflowRef: {name: misrouted}}
    """))
    waiting = await eventually(
        lambda: sandbox.get("executions", "misrouted-run"),
        until=lambda e: e and any(c.get("reason") == "PoolNotFound"
                                  for c in e.get("status", {}).get("conditions", [])),
        what="the PoolNotFound condition")
    assert "no WorkerPool named 'hevy'" in waiting["status"]["message"]
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {name: hevy}
        spec: {minReplicas: 0, maxReplicas: 1, scaleDownStabilizationSeconds: 1}
    """))
    assert (await finished(sandbox, "misrouted-run"))["status"]["phase"] == "Succeeded"


async def test_label_and_annotation_edits_do_not_recompile_a_workflow(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    """kopf's diff base is a digest per part: only spec edits run the spec handler."""
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: labelled}
        spec: {tasks: [{name: a, type: set, params: {v: 1}}]}
    """))
    await eventually(lambda: sandbox.get("workflows", "labelled"),
                     until=lambda w: w and w.get("status", {}).get("contentHash"),
                     what="the workflow to compile")

    def compiles() -> int:
        return sandbox.operator.log().count("Handler 'workflow_changed")

    def digests(found: dict | None) -> dict:
        stored = (found or {}).get("metadata", {}).get("annotations", {}).get(
            "conveyor.dev/last-handled-configuration", "{}")
        return json.loads(stored).get(DIGESTS_KEY, {})

    before = compiles()
    for i in range(3):
        await kubectl.run("label", "--overwrite", "workflow", "labelled", f"team=t{i}")
        await kubectl.run("annotate", "--overwrite", "workflow", "labelled", f"note=n{i}")
        # kopf has handled the edit once its diff base holds the new labels and annotations.
        await eventually(
            lambda i=i: sandbox.get("workflows", "labelled"),
            until=lambda w, i=i: digests(w).get("metadata.labels") == essence_digest(
                {"team": f"t{i}"}) and digests(w).get("metadata.annotations") == essence_digest(
                {"note": f"n{i}"}),
            what=f"kopf to handle label and annotation edit {i}")
    assert compiles() == before, "a label or annotation edit recompiled the workflow"

    for i in range(2):
        await kubectl.run("patch", "workflow", "labelled", "--type=merge", "-p",
                          json.dumps({"spec": {"tasks": [
                              {"name": "a", "type": "set", "params": {"v": 10 + i}}]}}))
        await eventually(lambda: sandbox.get("workflows", "labelled"),
                         until=lambda w: w["status"].get("observedGeneration")
                         == w["metadata"]["generation"],
                         what=f"spec edit {i} to be compiled")
    assert compiles() == before + 2
