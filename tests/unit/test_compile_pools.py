"""The compiler with pool facts (issue 11 item 2): advertised schemas, settled pools,
waiting, mounted Secrets. Tables over :func:`compile_workflow`; no servers."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_engine.compiler import (
    PoolFacts,
    TaskTypesUnavailable,
    Unavailable,
    WorkflowInvalid,
    compile_workflow,
)

#: What a pool advertises for the example's ``word-count`` (its pydantic JSON Schema), with
#: a ``$defs`` reference added so resolution is exercised.
WORD_COUNT = {
    "additionalProperties": False,
    "properties": {"text": {"type": "string"},
                   "top": {"default": 3, "maximum": 100, "minimum": 0, "type": "integer"},
                   "mode": {"$ref": "#/$defs/Mode"}},
    "required": ["text"],
    "type": "object",
    "$defs": {"Mode": {"enum": ["words", "lines"], "type": "string"}},
}
#: A type only the pool has (not installed where the compiler runs).
REMOTE = {"properties": {"n": {"type": "integer"}}, "required": ["n"], "type": "object",
          "additionalProperties": False}


def spec(*tasks: dict[str, Any], pool: str | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = {"tasks": list(tasks),
                           "inputs": [{"name": "text", "default": "x"}]}
    if pool:
        raw["pool"] = pool
    return raw


def facts(settled: bool = True, secrets: tuple[str, ...] = (), **types: Any) -> PoolFacts:
    return PoolFacts(types={k.replace("_", "-"): v for k, v in types.items()},
                     settled=settled, secrets=frozenset(secrets))


def problems(exc: WorkflowInvalid) -> list[str]:
    return [str(p) for p in exc.problems]


PASSES = [
    # literal params that the advertised schema accepts
    ({"name": "a", "type": "word-count", "params": {"text": "hi", "top": 5}},
     {"default": facts(word_count=WORD_COUNT)}),
    # $defs resolved
    ({"name": "a", "type": "word-count", "params": {"text": "hi", "mode": "lines"}},
     {"default": facts(word_count=WORD_COUNT)}),
    # a templated value is not checked (known only once rendered)
    ({"name": "a", "type": "word-count", "params": {"text": "hi", "top": "${{ inputs.text }}"}},
     {"default": facts(word_count=WORD_COUNT)}),
    # a type unknown locally, advertised by the pool
    ({"name": "a", "type": "remote-only", "params": {"n": 1}},
     {"default": facts(remote_only=REMOTE)}),
    # built-in types are checked locally whatever the pool advertises
    ({"name": "a", "type": "set", "params": {"values": {"x": 1}}}, {"default": facts()}),
    # the secret is mounted
    ({"name": "a", "type": "set", "params": {"values": {"x": "${{ secrets.payments.token }}"}}},
     {"default": facts(secrets=("payments",))}),
    # no facts for the task's pool: the local registry decides, as without pools
    ({"name": "a", "type": "word-count", "params": {"text": "hi"}, "pool": "other"},
     {"default": facts()}),
]


@pytest.mark.parametrize(("task", "pools"), PASSES)
def test_compiles_against_pool_facts(task: dict[str, Any], pools: dict[str, PoolFacts]) -> None:
    compiled = compile_workflow("ns/wf", spec(task), pools=pools)
    assert list(compiled.tasks) == [task["name"]]


FAILS = [
    # typo in a param of a custom type: names task, field and pool
    ({"name": "count", "type": "word-count", "params": {"text": "hi", "tpo": 5}},
     {"default": facts(word_count=WORD_COUNT)},
     ['task "count": params.tpo: unknown parameter for type "word-count" advertised by pool '
      '"default" (known: mode, text, top); did you mean "top"?']),
    # a literal value out of range
    ({"name": "count", "type": "word-count", "params": {"text": "hi", "top": 101}},
     {"default": facts(word_count=WORD_COUNT)},
     ['task "count": params.top: 101 is greater than the maximum of 100 (advertised by '
      'pool "default")']),
    # a wrong enum value behind a $ref
    ({"name": "count", "type": "word-count", "params": {"text": "hi", "mode": "chars"}},
     {"default": facts(word_count=WORD_COUNT)},
     ["task \"count\": params.mode: 'chars' is not one of ['words', 'lines'] (advertised by "
      'pool "default")']),
    # a missing required key
    ({"name": "count", "type": "word-count", "params": {}},
     {"default": facts(word_count=WORD_COUNT)},
     ['task "count": params.text: required parameter is missing (advertised by pool '
      '"default")']),
    # a type the settled pool does not serve
    ({"name": "count", "type": "word-cnt", "params": {}, "pool": "batch"},
     {"batch": facts(word_count=WORD_COUNT)},
     ['task "count": type: unknown task type "word-cnt" in pool "batch"; batch serves: '
      'word-count; did you mean "word-count"?']),
    # a Secret the task's pool does not mount: names task, Secret and pool
    ({"name": "t", "type": "set",
      "params": {"values": {"x": "${{ secrets.payments.token }}"}}},
     {"default": facts(secrets=("other",))},
     ["task \"t\": params.values.x: reads secret 'payments', which pool 'default' does not "
      "mount (spec.secrets)"]),
]


@pytest.mark.parametrize(("task", "pools", "expected"), FAILS)
def test_refuses_against_pool_facts(task: dict[str, Any], pools: dict[str, PoolFacts],
                                    expected: list[str]) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("ns/wf", spec(task), pools=pools)
    assert problems(caught.value) == expected


def test_a_type_no_worker_of_an_unsettled_pool_has_yet_waits() -> None:
    task = {"name": "count", "type": "word-count", "params": {"text": "hi"}}
    with pytest.raises(TaskTypesUnavailable) as caught:
        compile_workflow("ns/wf", spec(task, pool="batch"),
                         pools={"batch": facts(settled=False)})
    assert caught.value.unavailable == [Unavailable("count", "word-count", "batch")]
    assert str(caught.value) == ("no running worker of pool 'batch' has task type "
                                 "'word-count' yet (task 'count')")


def test_an_invalid_workflow_is_invalid_even_while_a_type_waits() -> None:
    waiting = {"name": "count", "type": "word-count", "params": {"text": "hi"}}
    broken = {"name": "b", "type": "set", "params": {}, "dependsOn": ["nope"]}
    with pytest.raises(WorkflowInvalid):
        compile_workflow("ns/wf", spec(waiting, broken),
                         pools={"default": facts(settled=False)})


def test_without_pool_facts_secrets_and_types_are_checked_as_before() -> None:
    task = {"name": "t", "type": "word-count",
            "params": {"text": "${{ secrets.payments.token }}"}}
    assert list(compile_workflow("ns/wf", spec(task)).tasks) == ["t"]


SECRET_TASK = {"name": "pay", "type": "set",
               "params": {"values": {"t": "${{ secrets.payments.token }}"}}}


@pytest.mark.parametrize(("settled", "mounted", "waits"), [
    (True, None, False),                      # not reported (an older worker): the spec holds
    (True, frozenset({"payments"}), False),   # every live worker mounts it
    (False, frozenset({"payments"}), False),  # rolling, but every live worker has it already
    (False, frozenset(), True),               # listed, not mounted by every live worker yet
    (True, frozenset({"other"}), True),
])
def test_a_secret_the_spec_lists_waits_until_every_live_worker_mounts_it(
        settled: bool, mounted: frozenset[str] | None, waits: bool) -> None:
    pools = {"batch": PoolFacts(settled=settled, secrets=frozenset({"payments"}),
                                mounted=mounted)}
    if not waits:
        assert list(compile_workflow("ns/wf", spec(SECRET_TASK, pool="batch"),
                                     pools=pools).tasks) == ["pay"]
        return
    with pytest.raises(TaskTypesUnavailable) as caught:
        compile_workflow("ns/wf", spec(SECRET_TASK, pool="batch"), pools=pools)
    assert caught.value.unavailable == [Unavailable("pay", "set", "batch", "payments")]
    assert str(caught.value) == ("not every running worker of pool 'batch' has secret "
                                 "'payments' mounted yet (task 'pay')")


def test_a_secret_the_spec_does_not_list_is_invalid_even_if_workers_mount_it() -> None:
    pools = {"batch": PoolFacts(settled=False, secrets=frozenset({"other"}),
                                mounted=frozenset({"payments"}))}
    with pytest.raises(WorkflowInvalid):
        compile_workflow("ns/wf", spec(SECRET_TASK, pool="batch"), pools=pools)
