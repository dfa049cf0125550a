"""Locks and semaphores: who gets a lock, names, messages, headers (tables)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from conveyor_engine.compiler import WorkflowInvalid, compile_workflow
from conveyor_engine.locks import (
    Holder,
    grant,
    header_value,
    lock_order,
    name_problem,
    recheck_at,
    wait_message,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)
LIVE = NOW + timedelta(seconds=5)
EXPIRED = NOW - timedelta(seconds=1)


def holder(token: int, lease: datetime = LIVE, alive: bool = True) -> Holder:
    return Holder(f"e{token}", "t", token, lease, alive)


@pytest.mark.parametrize(("holders", "limit", "granted", "evicted", "blocking"), [
    ([], 1, True, [], []),                                   # free mutex
    ([holder(1)], 1, False, [], [1]),                        # held mutex
    ([holder(1, EXPIRED)], 1, True, [1], []),                # lease ran out: evicted
    ([holder(1, alive=False)], 1, True, [1], []),            # task no longer holds the claim
    ([holder(1, NOW)], 1, False, [], [1]),                   # lease ends exactly now: still live
    ([holder(1)], 2, True, [], [1]),                         # semaphore with a place left
    ([holder(2), holder(1)], 2, False, [], [1, 2]),          # full semaphore, oldest first
    ([holder(1), holder(2, EXPIRED), holder(3, alive=False)], 2, True, [2, 3], [1]),
    ([holder(1), holder(2)], 1, False, [], [1, 2]),          # over a smaller limit: waits
])
def test_who_gets_a_lock(holders, limit, granted, evicted, blocking) -> None:
    decision = grant(holders, limit=limit, now=NOW)
    assert decision.granted is granted
    assert [h.token for h in decision.evict] == evicted
    assert [h.token for h in decision.blocking] == blocking


def test_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="limit: 0"):
        grant([], limit=0, now=NOW)


@pytest.mark.parametrize(("name", "ok"), [
    ("db-1", True), ("api:payments", True), ("tenant/a@b.c_d", True), ("A", True),
    ("", False), ("-x", False), ("has space", False), ("a,b", False), ("a=b", False),
    ("x" * 129, False), (7, False), (None, False),
])
def test_name_problem(name, ok) -> None:
    problem = name_problem(name, "locks[0].name")
    assert (problem is None) is ok
    if not ok:
        assert problem.startswith("locks[0].name: ")


def test_wait_message_names_the_holders() -> None:
    assert wait_message("db-1", 1, [holder(1)]) == "waiting for lock db-1 (limit 1) held by e1/t"
    many = [holder(i) for i in range(1, 6)]
    assert wait_message("s", 5, many).endswith("held by e1/t, e2/t, e3/t and 2 more")
    assert wait_message("s", 1, []) == "waiting for lock s (limit 1)"


def test_header_value_and_order() -> None:
    assert header_value({"db-1": 17, "api:a": 3}) == "api:a=3, db-1=17"
    assert lock_order(["b", "a", "b"]) == ["a", "b"]


@pytest.mark.parametrize(("lease", "seconds"), [(30, 5.0), (2, 2.0), (0, 0.1)])
def test_recheck_is_bounded(lease, seconds) -> None:
    assert recheck_at(NOW, lease) == NOW + timedelta(seconds=seconds)


def test_compiler_checks_locks() -> None:
    workflow = compile_workflow("ok", {
        "inputs": [{"name": "db", "default": "db-1"}],
        "tasks": [{"name": "up", "type": "set", "params": {"n": "x"}},
                  {"name": "a", "type": "set", "dependsOn": ["up"],
                   "locks": [{"name": "${{ inputs.db }}"},
                             {"name": "api:${{ tasks.up.outputs.n }}", "limit": 2}]}]})
    task = workflow.tasks["a"]
    assert [limit for _, limit in task.locks] == [1, 2]
    assert task.gated and "up" in task.refs  # the name's upstream output gets loaded
    assert not workflow.tasks["up"].gated
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("bad", {"tasks": [
            {"name": "a", "type": "set", "locks": [{"name": "bad name"}, {"name": "m"}]},
            {"name": "b", "type": "set", "locks": [{"name": "m", "limit": 3},
                                                   {"name": "${{ tasks.a.outputs.x }}"}]}]})
    text = str(caught.value)
    assert 'task "a": locks[0].name: \'bad name\' is not a valid name' in text
    assert 'task "b": locks[0].limit: lock "m" has limit 3 here but 1 in task "a"' in text
    assert 'task "b": locks[1].name: expression refers to task "a", which is not upstream' in text


def test_plain_workflows_hash_as_before() -> None:
    spec = {"tasks": [{"name": "a", "type": "set", "params": {"v": 1}}]}
    plain = compile_workflow("w", spec)
    assert '"locks"' not in plain.to_json() and "rateLimit" not in plain.to_json()
    locked = compile_workflow("w", {"tasks": [{**spec["tasks"][0], "locks": [{"name": "m"}]}]})
    assert locked.content_hash != plain.content_hash
