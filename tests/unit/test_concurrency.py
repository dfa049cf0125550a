"""Concurrency groups' decisions as tables (pure): admission, promotion, messages, group
names, and the compiler's checks of ``spec.concurrency``."""

from __future__ import annotations

import pytest

from conveyor_engine.compiler import WorkflowInvalid, compile_workflow
from conveyor_engine.concurrency import (
    MAX_GROUP_CHARS,
    Admission,
    Concurrency,
    OpenRun,
    Policy,
    admit,
    group_name,
    promotions,
    waiting_message,
)


def run(name: str, seq: int, *, queued: bool = False, limit: int = 1) -> OpenRun:
    return OpenRun(name, queued, seq, limit)


FORBID_2 = ("ConcurrencyForbidden: concurrency group 'g' already has 2 open run(s) "
            "(limit 2) and its policy is Forbid")


@pytest.mark.parametrize(("policy", "limit", "runs", "expected"), [
    # Queue never refuses nor cancels: the run joins the queue and promotions decide.
    (Policy.QUEUE, 1, [], Admission()),
    (Policy.QUEUE, 1, [run("a", 1), run("b", 2, queued=True)], Admission()),
    # Forbid counts admitted and queued runs alike.
    (Policy.FORBID, 2, [run("a", 1)], Admission()),
    (Policy.FORBID, 2, [run("a", 1), run("b", 2, queued=True)], Admission(forbidden=FORBID_2)),
    (Policy.FORBID, 2, [run("a", 1), run("b", 2)], Admission(forbidden=FORBID_2)),
    # Replace cancels the oldest runs (by arrival) until the new one fits.
    (Policy.REPLACE, 1, [], Admission()),
    (Policy.REPLACE, 1, [run("a", 1)], Admission(cancel=("a",))),
    (Policy.REPLACE, 1, [run("b", 7, queued=True), run("a", 3)], Admission(cancel=("a", "b"))),
    (Policy.REPLACE, 3, [run("a", 1), run("b", 2)], Admission()),
    (Policy.REPLACE, 2, [run("c", 3), run("a", 1), run("b", 2)], Admission(cancel=("a", "b"))),
])
def test_admit(policy: Policy, limit: int, runs: list[OpenRun], expected: Admission) -> None:
    assert admit(Concurrency("g", limit, policy), runs) == expected


@pytest.mark.parametrize(("runs", "admitted"), [
    ([], []),
    ([run("a", 1, queued=True)], ["a"]),
    # The head waits while the group is full; nobody behind it jumps ahead.
    ([run("a", 1), run("b", 2, queued=True)], []),
    ([run("a", 1), run("b", 2, queued=True, limit=2), run("c", 3, queued=True)], ["b"]),
    # Oldest first, by arrival (seq), not by the order rows came in.
    ([run("c", 9, queued=True, limit=2), run("b", 4, queued=True, limit=2)], ["b", "c"]),
    # Each head's own limit applies (a workflow edit counts for runs submitted after it).
    ([run("a", 1, queued=True, limit=1), run("b", 2, queued=True, limit=3)], ["a", "b"]),
    ([run("a", 1, queued=True, limit=3), run("b", 2, queued=True, limit=1)], ["a"]),
])
def test_promotions(runs: list[OpenRun], admitted: list[str]) -> None:
    assert promotions(runs) == admitted


def test_waiting_message_counts_every_run_that_goes_first() -> None:
    assert waiting_message("wf[acme]", admitted=1, ahead=2, limit=1) == (
        "waiting for 3 earlier run(s) of key 'wf[acme]' (1 running, 2 queued ahead; limit 1)")


def test_waiting_message_says_a_suspended_run_holds_the_group() -> None:
    assert waiting_message("wf", admitted=1, ahead=0, limit=1, suspended=1) == (
        "waiting for 1 earlier run(s) of key 'wf' (1 running, 0 queued ahead; limit 1); "
        "1 of the running are suspended and hold their place until resumed or cancelled")


@pytest.mark.parametrize(("workflow", "key", "group"), [
    ("ns/orders", None, "ns/orders"),
    ("ns/orders", "acme", "ns/orders[acme]"),
    ("ns/orders", "", "ns/orders[]"),
])
def test_group_name(workflow: str, key: str | None, group: str) -> None:
    assert group_name(workflow, key) == group


def test_long_group_names_are_cut_and_stay_distinct() -> None:
    a, b = group_name("wf", "x" * 600 + "a"), group_name("wf", "x" * 600 + "b")
    assert len(a) == len(b) == MAX_GROUP_CHARS and a != b


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"group": ""}, "concurrency.group: must be a non-empty string"),
    ({"group": "g", "limit": 0}, "concurrency.limit: must be an integer >= 1, not 0"),
    ({"group": "g", "limit": True}, "concurrency.limit: must be an integer >= 1, not True"),
    ({"group": "g", "policy": "Allow"}, "'Allow' is not a valid Policy"),
])
def test_concurrency_refuses_bad_values_naming_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Concurrency(**kwargs)


def spec(concurrency: dict) -> dict:
    return {"inputs": [{"name": "customer"}, {"name": "tier", "default": "free"}],
            "tasks": [{"name": "a", "type": "set", "params": {}}],
            "concurrency": concurrency}


@pytest.mark.parametrize(("concurrency", "problem"), [
    ({"limit": 0}, "concurrency.limit: Input should be greater than or equal to 1"),
    ({"policy": "Allow"}, "concurrency.policy: Input should be 'Queue', 'Forbid' or 'Replace'"),
    ({"key": "tasks.a.outputs.x"}, "concurrency.key: may use only inputs (it is evaluated "
                                   "when a run is submitted, before any task ran); "
                                   "'tasks.a.outputs.x' uses tasks"),
    ({"key": "inputs.custmer"}, "concurrency.key: no input named 'custmer'; did you mean "
                                '"customer"?'),
    ({"key": "inputs.customer +"}, "concurrency.key: 'inputs.customer +' does not parse"),
])
def test_the_compiler_checks_concurrency_naming_the_field(concurrency: dict, problem: str
                                                          ) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("ns/wf", spec(concurrency))
    assert problem in str(caught.value)


@pytest.mark.parametrize(("concurrency", "inputs", "expected"), [
    (None, {"customer": "acme"}, None),
    ({}, {"customer": "acme"}, Concurrency("ns/wf", 1, Policy.QUEUE)),
    ({"key": "inputs.customer", "limit": 2, "policy": "Forbid"}, {"customer": "acme"},
     Concurrency("ns/wf[acme]", 2, Policy.FORBID)),
    ({"key": "inputs.customer + ':' + inputs.tier"}, {"customer": "acme", "tier": "gold"},
     Concurrency("ns/wf[acme:gold]", 1, Policy.QUEUE)),
    ({"key": "${{ inputs.customer }}"}, {"customer": 7}, Concurrency("ns/wf[7]", 1)),
])
def test_a_runs_group_comes_from_its_inputs(concurrency: dict | None, inputs: dict,
                                            expected: Concurrency | None) -> None:
    raw = spec(concurrency) if concurrency is not None else {**spec({}), "concurrency": None}
    workflow = compile_workflow("ns/wf", raw)
    assert workflow.concurrency(workflow.resolve_inputs(inputs)) == expected


def test_a_workflow_without_concurrency_hashes_as_before() -> None:
    plain = {"tasks": [{"name": "a", "type": "set", "params": {}}]}
    assert (compile_workflow("w", plain).content_hash
            == compile_workflow("w", {**plain, "concurrency": None}).content_hash)
    assert (compile_workflow("w", plain).content_hash
            != compile_workflow("w", {**plain, "concurrency": {}}).content_hash)
