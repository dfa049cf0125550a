"""Scaling reaction benchmark: how fast a sleeping pool wakes for a burst, in the sandbox.

Starts the sandbox (API emulation, operator, kubelet stand-in, Redis, PostgreSQL) with the
pools' periodic check set to 60 s, so only the engine's change stream can explain a fast
reaction, then for each round submits an Execution of N tasks to a pool at zero replicas and
prints the time until its Deployment is scaled up, until the first worker is ready, until
the burst is done and until the pool is back at zero.

    .venv/bin/python bench/scaling.py --rounds 3 --tasks 200

The issue's target is a scale-up within 2 s of the burst. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from conveyor_sandbox.sandbox import Sandbox, SandboxConfig


async def wait(probe, what: str, timeout: float = 120.0) -> float:
    start = time.perf_counter()
    while not await probe():
        if time.perf_counter() - start > timeout:
            raise TimeoutError(what)
        await asyncio.sleep(0.01)
    return time.perf_counter()


async def run(args: argparse.Namespace) -> None:
    config = SandboxConfig(workdir=Path(tempfile.mkdtemp(prefix="conveyor-scaling-")),
                           redis_url=os.environ.get("CONVEYOR_TEST_REDIS_URL"),
                           operator_env={"CONVEYOR_POOL_CHECK_SECONDS": "60"})
    async with Sandbox(config) as sandbox:
        tasks = [{"name": f"t{i}", "type": "set", "params": {"i": i}} for i in range(args.tasks)]
        await sandbox.apply_objects([
            {"apiVersion": "conveyor.dev/v1alpha1", "kind": "WorkerPool",
             "metadata": {"name": "bench"},
             "spec": {"minReplicas": 0, "maxReplicas": 3, "targetPerReplica": 50,
                      "scaleDownStabilizationSeconds": 2, "shutdownGraceSeconds": 5}},
            {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Workflow",
             "metadata": {"name": "bench"}, "spec": {"pool": "bench", "tasks": tasks}},
        ])

        async def replicas() -> int:
            found = await sandbox.deployment("bench")
            return (found or {}).get("spec", {}).get("replicas", -1)

        async def running() -> int:
            found = await sandbox.deployment("bench")
            return ((found or {}).get("status") or {}).get("replicas") or 0

        async def ready() -> int:
            found = await sandbox.deployment("bench")
            return ((found or {}).get("status") or {}).get("readyReplicas") or 0

        rows = []
        for n in range(args.rounds):
            # Asleep means no worker left at all, not just scaled to zero: a stopping worker
            # would otherwise take the next burst before the scaler has to react.
            await wait(lambda: _eq(replicas(), 0), "pool at zero")
            await wait(lambda: _eq(running(), 0), "no worker left")
            name = f"bench-{n}"
            start = time.perf_counter()
            await sandbox.apply_objects([{
                "apiVersion": "conveyor.dev/v1alpha1", "kind": "Execution",
                "metadata": {"name": name}, "spec": {"workflowRef": {"name": "bench"}}}])
            scaled = await wait(lambda: _gt(replicas(), 0), "scale-up")
            first = await wait(lambda: _gt(ready(), 0), "a ready worker")
            await sandbox.wait_finished([("default", name)], timeout=120)
            done = time.perf_counter()
            asleep = await wait(lambda: _eq(replicas(), 0), "scale to zero")
            rows.append((scaled - start, first - start, done - start, asleep - done))
        print(f"{'round':>5} {'scale-up s':>11} {'first ready s':>14} {'burst done s':>13} "
              f"{'back to 0 s':>12}")
        for i, row in enumerate(rows):
            cells = zip(row, (11, 14, 13, 12), strict=True)
            print(f"{i:>5} " + " ".join(f"{v:>{w}.2f}" for v, w in cells))
        print(f"median scale-up reaction: {statistics.median(r[0] for r in rows):.2f} s "
              f"(target: within 2 s; periodic check was 60 s)")


async def _eq(value, expected: int) -> bool:
    return await value == expected


async def _gt(value, bound: int) -> bool:
    return await value > bound


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tasks", type=int, default=200)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
