"""Compiling pauses CPython's cyclic garbage collector (``compile_pass.gc_paused``): a long
workflow's compile no longer pays for collector passes over every object it keeps, and the
collector's switch comes back as it was, across nesting, threads and errors."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from conveyor_engine.compiler import WorkflowInvalid, compile_workflow
from conveyor_engine.compiler.compile_pass import gc_paused


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generations of the collector passes that start while the test runs."""
    passes: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            passes.append(info["generation"])

    gc.callbacks.append(record)
    try:
        yield passes
    finally:
        gc.callbacks.remove(record)


def chain(n: int) -> dict:
    """A chain of ``set`` tasks, each reading its predecessor through CEL."""
    tasks = [{"name": "t0", "type": "set", "params": {"v": 0}}]
    tasks += [{"name": f"t{i}", "type": "set", "dependsOn": [f"t{i - 1}"],
               "params": {"v": f"${{{{ tasks.t{i - 1}.outputs.v }}}}"}} for i in range(1, n)]
    return {"tasks": tasks}


def test_a_long_compile_runs_no_collector_pass(collections: list[int]) -> None:
    assert gc.isenabled()
    spec = chain(2_000)
    gc.collect()
    collections.clear()
    workflow = compile_workflow("chain", spec)
    # At most the one pass that follows the pause, over what the compile kept; before the
    # pause this compile started 125 passes, 10 of them of generation 1.
    assert len(collections) <= 1, collections
    assert gc.isenabled()
    assert len(workflow.downstream("t0")) == 1_999


def test_a_refused_compile_turns_the_collector_back_on() -> None:
    with pytest.raises(WorkflowInvalid):
        compile_workflow("bad", {"tasks": [{"name": "a", "type": "set", "dependsOn": ["a"]}]})
    assert gc.isenabled()


@pytest.mark.parametrize("enabled_before", [True, False])
def test_the_switch_is_restored_and_nesting_is_counted(enabled_before: bool) -> None:
    if not enabled_before:
        gc.disable()
    try:
        with gc_paused():
            assert not gc.isenabled()
            with gc_paused():
                assert not gc.isenabled()
            assert not gc.isenabled()   # the outer pause still holds
        assert gc.isenabled() is enabled_before
    finally:
        gc.enable()


def test_the_collector_comes_back_when_the_last_thread_is_done() -> None:
    inside = threading.Barrier(2)
    release = threading.Event()

    def compile_in_thread() -> None:
        with gc_paused():
            inside.wait(timeout=10)
            release.wait(timeout=10)

    thread = threading.Thread(target=compile_in_thread)
    thread.start()
    with gc_paused():
        inside.wait(timeout=10)
    assert not gc.isenabled()   # the other thread's pause is still on
    release.set()
    thread.join(timeout=10)
    assert gc.isenabled()
