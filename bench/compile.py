"""Compiler benchmark: time and peak memory to compile long dependency chains.

Each workflow is a chain ``t0 <- t1 <- ... <- t(N-1)`` of ``set`` tasks, declared in
reverse (the worst order for a naive topological sort), in two kinds: ``plain`` (only
``dependsOn``) and ``templated``, where each task reads its predecessor's output
(``${{ tasks.t(i-1).outputs.v }}``) and every tenth also the chain's first task (a
reference far upstream), so each task costs a CEL compile too. Also recompiles the stored
form, as a worker does.

    .venv/bin/python bench/compile.py            # 1,000, 4,000 and 10,000 tasks
    .venv/bin/python bench/compile.py 500 2000   # other sizes

Time is measured without tracing; peak memory is the ``tracemalloc`` peak of a second
compile (Python allocations, in MiB), and the process's maximum resident size
(``ru_maxrss``, cumulative over the sizes run so far). Figures are printed,
never asserted (issue 9's target: 10,000 tasks in under 2 s and 300 MB).
"""

from __future__ import annotations

import gc
import resource
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from conveyor_engine.compiler import CompiledWorkflow, compile_workflow


def chain(n: int, templated: bool = True) -> dict[str, Any]:
    """The wire form of an ``n``-task chain (see the module docstring)."""
    tasks = [{"name": "t0", "type": "set", "params": {"v": 0}}]
    for i in range(1, n):
        params: dict[str, Any] = {"v": f"${{{{ tasks.t{i - 1}.outputs.v }}}}"}
        if i % 10 == 0:
            params["first"] = "${{ tasks.t0.outputs.v }}"
        if not templated:
            params = {"v": i}
        tasks.append({"name": f"t{i}", "type": "set", "params": params,
                      "dependsOn": [f"t{i - 1}"]})
    return {"tasks": list(reversed(tasks))}


def measure(n: int, templated: bool) -> None:
    spec = chain(n, templated)
    gc.collect()
    start = time.perf_counter()
    workflow = compile_workflow("chain", spec)
    compiled = time.perf_counter() - start
    assert len(workflow.tasks) == n and len(workflow.downstream("t0")) == n - 1
    start = time.perf_counter()
    CompiledWorkflow.from_json("chain", workflow.to_json())
    reloaded = time.perf_counter() - start
    del workflow
    gc.collect()
    # Memory in a second compile: tracemalloc slows allocation, so it is not timed.
    tracemalloc.start()
    compile_workflow("chain", spec)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kind = "templated" if templated else "plain"
    print(f"{n:>6} tasks {kind:>9}: compile {compiled:6.2f} s, from_json {reloaded:6.2f} s, "
          f"peak {peak / 2**20:7.1f} MiB (tracemalloc), max RSS {rss:7.1f} MiB", flush=True)


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [1_000, 4_000, 10_000]
    for templated in (False, True):
        for n in sizes:
            measure(n, templated)


if __name__ == "__main__":
    main()
