"""End to end: an SDK task type from the example package (``examples/tasktypes``, installed
into the sandbox's environment) in a pool of its own, through kubectl, the real operator and
real workers (issue 11 "Done when"): a long task heartbeats past many leases and is never
given to another worker, and deleting its Execution interrupts the running function.

The pool's workers have a 1 s lease (``CONVEYOR_LEASE_SECONDS`` in the pool's ``env``), so
a task of several seconds outlives several leases; a takeover would show as a second
attempt in PostgreSQL and a second "started" line in the worker's log.
"""

from __future__ import annotations

import hashlib
import re

import pytest

from conveyor_engine.api import Engine
from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

POOL = "sdk-long"
TEXT = "a" * 3600  # digested one byte per chunk


def worker_log(sandbox: Sandbox) -> str:
    """The logs of every worker process of the pool, joined."""
    assert sandbox.kubelet is not None
    return "\n".join(p.log() for p in sandbox.kubelet.processes
                     if p.name.startswith(f"conveyor-worker-{POOL}-"))


async def test_a_long_sdk_task_outlives_its_leases_and_stops_when_its_execution_is_deleted(
    sandbox: Sandbox, kubectl: Kubectl, sandbox_engine: Engine,
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
        apiVersion: conveyor.dev/v1alpha1
        kind: WorkerPool
        metadata: {{name: {POOL}}}
        spec:
          minReplicas: 1
          maxReplicas: 1
          concurrency: 2
          shutdownGraceSeconds: 5
          env: [{{name: CONVEYOR_LEASE_SECONDS, value: "1"}}]
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {{name: sdk-long}}
        spec:
          pool: {POOL}
          tasks:
            # 60 chunks with 0.1 s pauses: about 6 s, six leases of 1 s.
            - name: paced
              type: checksum
              params: {{text: "{TEXT[:60]}", chunkBytes: 1, pauseSeconds: 0.1}}
            # An hour of pauses: only the deletion ends it.
            - name: endless
              type: checksum
              dependsOn: [paced]
              params: {{text: "{TEXT}", chunkBytes: 1, pauseSeconds: 1}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {{name: sdk-long-1}}
        spec: {{workflowRef: {{name: sdk-long}}}}
    """))
    running = await eventually(
        lambda: sandbox.get("executions", "sdk-long-1"),
        until=lambda e: {t["name"]: t["phase"] for t in (e or {}).get("status", {}).get(
            "tasks", [])}.get("endless") == "Running",
        timeout=120, what="the paced task to succeed and the endless one to run")
    execution_id = running["status"]["executionId"]
    await eventually(lambda: _log(sandbox), until=lambda text: "endless attempt 1: started"
                     in text, timeout=60, what="the endless function to start")

    state = await sandbox_engine.get(execution_id)
    assert state is not None
    paced = state.task("paced")
    assert paced.phase == "Succeeded"
    assert paced.outputs == {"algorithm": "sha256", "bytes": 60,
                             "digest": hashlib.sha256(TEXT[:60].encode()).hexdigest()}
    # Never redelivered: one attempt, and the function started once.
    attempts = await sandbox_engine.attempts(execution_id)
    assert [(a.task, a.attempt) for a in attempts if a.task == "paced"] == [("paced", 1)]
    started = re.findall(rf"checksum {execution_id}/(\w+) attempt (\d+): started",
                         worker_log(sandbox))
    assert started == [("paced", "1"), ("endless", "1")], started

    await kubectl.run("delete", "execution", "sdk-long-1", "--wait=false")
    interrupted = await eventually(
        lambda: _log(sandbox),
        until=lambda text: f"checksum {execution_id}/endless attempt 1: interrupted" in text,
        timeout=60, what="the running function to be interrupted by the deletion")
    assert f"{execution_id}/endless attempt 1: interrupted after" in interrupted
    final = await eventually(lambda: sandbox_engine.get(execution_id),
                             until=lambda s: s is not None and s.phase == "Cancelled",
                             timeout=60, what="the execution to be recorded as Cancelled")
    endless = final.task("endless")
    assert endless.phase == "Cancelled" or "the Execution resource was deleted" in (
        endless.message or ""), endless
    await eventually(lambda: sandbox.get("executions", "sdk-long-1"), until=lambda e: e is None,
                     timeout=60, what="the deleted Execution to go")
    await kubectl.run("delete", "workflow", "sdk-long")
    await kubectl.run("delete", "workerpool", POOL, "--wait=false")


async def _log(sandbox: Sandbox) -> str:
    return worker_log(sandbox)
