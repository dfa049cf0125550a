"""The workflow compiler: checks, DAG facts, content hash, inputs and backoff (pure)."""

from __future__ import annotations

import itertools
import json
from datetime import timedelta
from typing import Any

import pytest

from conveyor_engine import tasktypes
from conveyor_engine.compiler import (
    CompiledWorkflow,
    InvalidInputs,
    Problem,
    WorkflowInvalid,
    compile_workflow,
)
from conveyor_engine.model import WorkflowSpec


def task(name: str, *deps: str, type: str = "set", **fields: Any) -> dict[str, Any]:
    return {"name": name, "type": type, "dependsOn": list(deps), **fields}


def spec(*tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"tasks": list(tasks), **fields}


DIAMOND = spec(
    task("a"),
    task("b", "a", params={"v": "${{ tasks.a.outputs.x }}"}),
    task("c", "a"),
    task("d", "b", "c", when="tasks.b.phase == 'Succeeded'"),
)


def test_diamond() -> None:
    wf = compile_workflow("diamond", DIAMOND)
    assert list(wf.tasks) == ["a", "b", "c", "d"]
    assert wf.roots == ("a",)
    assert wf.pool == "default"
    facts = {name: (t.depends_on, t.dependents, wf.upstream(name), t.refs)
             for name, t in wf.tasks.items()}
    assert facts == {
        "a": ((), ("b", "c"), frozenset(), frozenset()),
        "b": (("a",), ("d",), {"a"}, {"a"}),
        "c": (("a",), ("d",), {"a"}, frozenset()),
        "d": (("b", "c"), (), {"a", "b", "c"}, {"b"}),
    }
    assert {name: wf.downstream(name) for name in wf.tasks} == {
        "a": {"b", "c", "d"},
        "b": {"d"},
        "c": {"d"},
        "d": frozenset(),
    }
    with pytest.raises(KeyError):
        wf.downstream("nope")
    with pytest.raises(KeyError):
        wf.upstream("nope")
    b = wf.tasks["b"]
    assert b.type == "set" and b.spec.name == "b" and b.when is None and b.timeout is None
    assert b.params.render({"tasks": {"a": {"outputs": {"x": 1}, "phase": "Succeeded"}}}) == {
        "v": 1
    }
    assert wf.tasks["d"].when is not None
    assert wf.tasks["d"].when.evaluate({"tasks": {"b": {"phase": "Succeeded"}}}) is True


@pytest.mark.parametrize(
    ("tasks", "order", "roots"),
    [
        ([task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c")], "abcd", "a"),
        # ties between ready tasks go to the one declared first
        ([task("d", "b", "c"), task("c", "a"), task("b", "a"), task("a")], "acbd", "a"),
        ([task("b", "a"), task("a"), task("c")], "abc", "ac"),
        ([task("x"), task("y"), task("z")], "xyz", "xyz"),
        ([task("c", "b"), task("b", "a"), task("a")], "abc", "a"),
        # a repeated dependency counts once
        ([task("a"), task("b", "a", "a")], "ab", "a"),
    ],
)
def test_topological_order(tasks: list[dict[str, Any]], order: str, roots: str) -> None:
    wf = compile_workflow("w", spec(*tasks))
    assert "".join(wf.tasks) == order
    assert "".join(wf.roots) == roots


HTTP_OK = {"url": "https://example.test/"}

PROBLEMS = [
    pytest.param(
        spec(task("a", "c"), task("b", "a"), task("c", "b")),
        [("a", "dependsOn", "cycle: a -> b -> c -> a")],
        id="cycle",
    ),
    pytest.param(
        spec(task("a", "b"), task("b", "a"), task("x", "y"), task("y", "x")),
        [("a", "dependsOn", "cycle: a -> b -> a"), ("x", "dependsOn", "cycle: x -> y -> x")],
        id="two-cycles",
    ),
    pytest.param(
        spec(task("a"), task("b", "a", "x")),
        [("b", "dependsOn[1]", 'no task named "x"')],
        id="unknown-dependency",
    ),
    pytest.param(
        spec(task("fetch"), task("b", "fetc")),
        [("b", "dependsOn[0]", 'no task named "fetc"; did you mean "fetch"?')],
        id="unknown-dependency-hint",
    ),
    pytest.param(
        spec(task("a", "a")),
        [("a", "dependsOn[0]", "a task cannot depend on itself")],
        id="self-dependency",
    ),
    pytest.param(
        spec(task("a"), task("a")),
        [("a", "name", "duplicate task name (tasks[0] and tasks[1])")],
        id="duplicate-task",
    ),
    pytest.param(
        spec(task("a"), inputs=[{"name": "k"}, {"name": "k", "default": 1}]),
        [(None, "inputs[1].name", 'duplicate input name "k"')],
        id="duplicate-input",
    ),
    pytest.param(
        spec(task("a", type="htp")),
        # a prefix: other tests of the session may register more types (tests.support)
        [("a", "type", 'unknown task type "htp" (known types: ')],
        id="unknown-type",
    ),
    pytest.param(
        spec(task("h", type="http", params={**HTTP_OK, "timeoutSeconds": 3})),
        [("h", "params.timeoutSeconds", 'unknown parameter for type "http" (known: ')],
        id="unknown-param",
    ),
    pytest.param(
        spec(task("h", type="http", params={**HTTP_OK, "expected_status": [200]})),
        [("h", "params.expected_status", 'did you mean "expectedStatus"?')],
        id="unknown-param-hint",
    ),
    pytest.param(
        spec(task("h", type="http", params={"method": "GET"})),
        [("h", "params.url", "required parameter is missing")],
        id="missing-required-param",
    ),
    pytest.param(
        spec(task("h", type="http", params={**HTTP_OK, "expectedStatus": "x"})),
        [("h", "params.expectedStatus", "valid list")],
        id="bad-literal-type",
    ),
    pytest.param(
        spec(task("h", type="http", params={**HTTP_OK, "expectedStatus": [200, 700]})),
        [("h", "params.expectedStatus[1]", "less than or equal to 599")],
        id="bad-literal-nested",
    ),
    pytest.param(
        spec(task("h", type="http", params={"url": "ftp://example.test/"})),
        [("h", "params.url", "'ftp://example.test/' must start with http:// or https://")],
        id="type-validator-message",
    ),
    pytest.param(
        spec(task("w", type="wait", params={"duration": "soon"})),
        [("w", "params.duration", "'soon' is not a duration")],
        id="bad-literal-duration",
    ),
    pytest.param(
        spec(task("a"), task("c"), task("d", "a", params={"v": "${{ tasks.c.outputs.x }}"})),
        [("d", "params.v", 'expression refers to task "c", which is not upstream of "d"')],
        id="not-upstream",
    ),
    pytest.param(
        spec(task("a"), task("d", "a", params={"h": {"x": "${{ tasks.zz.outputs }}"}})),
        [("d", "params.h.x", 'expression refers to task "zz", which does not exist')],
        id="unknown-task-ref",
    ),
    pytest.param(
        spec(task("a", when="tasks.a.phase == 'Succeeded'")),
        [("a", "when", 'expression refers to task "a" itself')],
        id="self-ref",
    ),
    pytest.param(
        spec(task("a", params={"v": "${{ inputs.nope }}"}), inputs=[{"name": "k"}]),
        [("a", "params.v", 'refers to input "nope", which is not declared (declared inputs: k)')],
        id="undeclared-input",
    ),
    pytest.param(
        spec(task("a", when="inputs.k ==")),
        [("a", "when", "does not parse")],
        id="bad-when",
    ),
    pytest.param(
        spec(task("a", params={"v": "${{ secret }}"})),
        [("a", "params.v", "unknown variable 'secret'")],
        id="unknown-root",
    ),
    pytest.param(
        spec(task("a", timeout="10 minutes")),
        [("a", "timeout", "'10 minutes' is not a duration")],
        id="bad-timeout",
    ),
    pytest.param(
        spec(task("a"), task("b", params={"false": "${{ tasks.a.outputs.v }}"})),
        [("b", "params.false", "quote the key")],
        id="yaml-boolean-key-hint",
    ),
    pytest.param(
        spec(task("h", type="http", params={**HTTP_OK, "true": 1})),
        [("h", "params.true", "YAML 1.1, which kubectl uses")],
        id="yaml-boolean-param-hint",
    ),
    pytest.param(
        spec(task("nap", type="wait", params={"duration": "4s"}, timeout="1s")),
        [("nap", "timeout", 'does not apply to a "wait" task')],
        id="timeout-on-wait",
    ),
    pytest.param(
        spec(task("a"), inputs=[{"name": "k", "required": True, "default": 5}]),
        [(None, "inputs[0].required", "a required input's default would never be used")],
        id="required-with-default",
    ),
    pytest.param(
        spec(task("a", retry={"limit": -1, "backoff": "x"})),
        [
            ("a", "retry.limit", "greater than or equal to 0"),
            ("a", "retry.backoff", "'x' is not a duration"),
        ],
        id="bad-retry",
    ),
    pytest.param(
        spec(task("a"), {"type": "set"}),
        [(None, "tasks[1].name", "required field is missing")],
        id="pydantic-unnamed-task",
    ),
    pytest.param(
        spec(task("a"), task("b", retry={"maxBackoff": "never"})),
        [("b", "retry.maxBackoff", "'never' is not a duration")],
        id="pydantic-named-task",
    ),
    pytest.param(
        spec(task("a"), bogus=1),
        [(None, "bogus", "unknown field")],
        id="pydantic-extra-field",
    ),
    pytest.param(
        spec(task("a"), pool="Big Pool"),
        [(None, "pool", "'Big Pool' is not a valid name")],
        id="pydantic-bad-name",
    ),
    pytest.param(spec(), [(None, "tasks", "at least one task")], id="no-tasks"),
]


@pytest.mark.parametrize(("raw", "expected"), PROBLEMS)
def test_problems(raw: dict[str, Any], expected: list[tuple[str | None, str, str]]) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("w", raw)
    found = [(p.task, p.field, p.message) for p in caught.value.problems]
    for task_name, field, fragment in expected:
        assert any(t == task_name and f == field and fragment in m for t, f, m in found), (
            f"no {(task_name, field, fragment)} in {found}"
        )
    assert len(found) == len(expected), found


@pytest.mark.parametrize(
    "params",
    [
        {"url": "https://example.test/${{ inputs.k }}"},
        {"url": "${{ inputs.k }}", "expectedStatus": "${{ inputs.codes }}"},
        {"url": "https://example.test/", "expectedStatus": [200, "${{ inputs.k }}"]},
        {"url": "https://example.test/", "headers": {"Authorization": "Bearer ${{ inputs.k }}"}},
        # presence-based model checks wait for rendering when templates are involved
        {"url": "https://example.test/", "json": "${{ inputs.k }}", "body": "text"},
    ],
)
def test_templated_params_are_checked_when_rendered(params: dict[str, Any]) -> None:
    raw = spec(task("h", type="http", params=params), inputs=[{"name": "k"}, {"name": "codes"}])
    compile_workflow("w", raw)


def test_all_problems_are_reported_sorted() -> None:
    raw = spec(
        task("c", type="nope"),
        task("b", "x"),
        task("a", params={"v": "${{ tasks.b.outputs }}"}),
        inputs=[{"name": "k"}, {"name": "k"}],
    )
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("w", raw)
    known = ", ".join(tasktypes.known())
    assert str(caught.value) == "\n".join(
        [
            'workflow "w" is invalid (4 problems):',
            '- inputs[1].name: duplicate input name "k"',
            '- task "a": params.v: expression refers to task "b", which is not upstream of "a"; '
            "add it to dependsOn",
            '- task "b": dependsOn[0]: no task named "x"',
            f'- task "c": type: unknown task type "nope" (known types: {known})',
        ]
    )
    assert caught.value.problems[0] == Problem(None, "inputs[1].name", 'duplicate input name "k"')


def test_hash_is_stable_and_canonical() -> None:
    base = compile_workflow("w", DIAMOND)
    assert base.content_hash.startswith("sha256:") and len(base.content_hash) == 71

    reordered = json.loads(json.dumps(DIAMOND))
    reordered = {key: reordered[key] for key in reversed(reordered)}
    reordered["tasks"] = [{k: t[k] for k in reversed(t)} for t in reordered["tasks"]]
    explicit = json.loads(json.dumps(DIAMOND))
    explicit["pool"] = "default"
    explicit["inputs"] = []
    explicit["tasks"][0]["retry"] = {"limit": 0, "backoff": "1s", "factor": 2.0}
    from_model = WorkflowSpec.model_validate(DIAMOND)
    for same in (reordered, explicit, from_model):
        assert compile_workflow("other-name", same).content_hash == base.content_hash

    changed = json.loads(json.dumps(DIAMOND))
    changed["tasks"][1]["params"]["v"] = "${{ tasks.a.outputs.y }}"
    assert compile_workflow("w", changed).content_hash != base.content_hash


def test_json_round_trip() -> None:
    raw = spec(
        task("a", params={"z": 1, "a": {"y": [1, 2]}}, timeout="1m30s"),
        task("b", "a", retry={"limit": 3, "backoff": "250ms"}),
        inputs=[
            {"name": "need"},
            {"name": "opt", "default": None},
            {"name": "flag", "default": False, "description": "d"},
        ],
        pool="fast",
    )
    wf = compile_workflow("w", raw)
    again = CompiledWorkflow.from_json("w", wf.to_json())
    assert again.content_hash == wf.content_hash
    assert again.to_json() == wf.to_json()
    assert again.spec.tasks == wf.spec.tasks
    assert list(again.tasks) == list(wf.tasks)
    assert [i.is_required for i in again.spec.inputs] == [True, False, False]
    assert again.tasks["a"].timeout == timedelta(seconds=90)
    assert again.pool == "fast"


def test_required_and_optional_null_inputs_hash_differently() -> None:
    required = compile_workflow("w", spec(task("a"), inputs=[{"name": "k"}]))
    optional = compile_workflow("w", spec(task("a"), inputs=[{"name": "k", "default": None}]))
    assert required.content_hash != optional.content_hash


def test_from_json_rejects_bad_text() -> None:
    with pytest.raises(WorkflowInvalid, match="not valid JSON"):
        CompiledWorkflow.from_json("w", "{not json")


INPUTS = [
    {"name": "region", "default": "eu"},
    {"name": "user"},
    {"name": "dry", "required": False},
    {"name": "tags", "default": ["a"]},
]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"user": "u"}, {"region": "eu", "user": "u", "dry": None, "tags": ["a"]}),
        (
            {"user": "u", "region": "us", "dry": True, "tags": []},
            {"region": "us", "user": "u", "dry": True, "tags": []},
        ),
        (None, ["inputs.user: required input is missing"]),
        (
            {"user": 1, "zone": 2},
            ["inputs.zone: unknown input (declared inputs: region, user, dry, tags)"],
        ),
        (
            {"zone": 2},
            [
                "inputs.user: required input is missing",
                "inputs.zone: unknown input (declared inputs: region, user, dry, tags)",
            ],
        ),
        ("nope", ["inputs: must be a map of names to values"]),
    ],
)
def test_resolve_inputs(given: Any, expected: dict[str, Any] | list[str]) -> None:
    wf = compile_workflow("w", spec(task("a"), inputs=INPUTS))
    if isinstance(expected, dict):
        assert wf.resolve_inputs(given) == expected
        return
    with pytest.raises(InvalidInputs) as caught:
        wf.resolve_inputs(given)
    assert [str(p) for p in caught.value.problems] == expected


def test_resolved_defaults_are_copies() -> None:
    wf = compile_workflow("w", spec(task("a"), inputs=INPUTS))
    wf.resolve_inputs({"user": "u"})["tags"].append("mutated")
    assert wf.resolve_inputs({"user": "u"})["tags"] == ["a"]


@pytest.mark.parametrize(
    ("retry", "retry_number", "seconds"),
    [
        ({"backoff": "1s", "factor": 2, "maxBackoff": "10s"}, 1, 1),
        ({"backoff": "1s", "factor": 2, "maxBackoff": "10s"}, 2, 2),
        ({"backoff": "1s", "factor": 2, "maxBackoff": "10s"}, 3, 4),
        ({"backoff": "1s", "factor": 2, "maxBackoff": "10s"}, 4, 8),
        ({"backoff": "1s", "factor": 2, "maxBackoff": "10s"}, 5, 10),
        ({"backoff": "1s", "factor": 2, "maxBackoff": "10s"}, 10_000, 10),
        ({"backoff": "500ms", "factor": 1.5, "maxBackoff": "1m"}, 3, 1.125),
        ({"backoff": "2s", "factor": 1, "maxBackoff": "1m"}, 50, 2),
        ({"backoff": "1m", "factor": 2, "maxBackoff": "30s"}, 1, 30),
        ({"backoff": "0s", "factor": 2, "maxBackoff": "30s"}, 7, 0),
        ({}, 1, 1),  # defaults: 1s, x2, capped at 5m
        ({}, 9, 256),
        ({}, 10, 300),
    ],
)
def test_backoff(retry: dict[str, Any], retry_number: int, seconds: float) -> None:
    wf = compile_workflow("w", spec(task("a", retry={"limit": 3, **retry})))
    assert wf.tasks["a"].backoff(retry_number) == timedelta(seconds=seconds)


def test_backoff_is_one_based() -> None:
    wf = compile_workflow("w", spec(task("a")))
    with pytest.raises(ValueError, match="1-based"):
        wf.tasks["a"].backoff(0)


def test_large_chain_compiles() -> None:
    names = [f"t{i}" for i in range(300)]
    tasks = [task(names[0])] + [task(n, prev) for prev, n in itertools.pairwise(names)]
    wf = compile_workflow("chain", spec(*reversed(tasks)))
    assert list(wf.tasks) == names
    assert wf.downstream("t0") == frozenset(names[1:])
    assert wf.upstream("t299") == frozenset(names[:-1])



def test_long_chain_with_references_compiles_with_the_right_facts() -> None:
    """Issue 9: a long chain compiles without per-task ancestor sets (near-linear; the
    figures are in ``bench/compile.py``, never asserted here) and gets every fact right."""
    n = 3000
    names = [f"t{i}" for i in range(n)]
    tasks = [task(names[0], params={"v": 0})] + [
        task(name, prev, params={"v": f"${{{{ tasks.{prev}.outputs.v + 1 }}}}",
                                 "first": "${{ tasks.t0.outputs.v }}"})
        for prev, name in itertools.pairwise(names)]
    wf = compile_workflow("chain", spec(*reversed(tasks)))
    assert list(wf.tasks) == names and wf.roots == ("t0",)
    middle = wf.tasks["t1500"]
    assert (middle.depends_on, middle.dependents, middle.refs) == (
        ("t1499",), ("t1501",), frozenset({"t1499", "t0"}))
    assert wf.upstream("t1500") == frozenset(names[:1500])
    assert wf.downstream("t1500") == frozenset(names[1501:])
    assert wf.tasks["t2999"].params.render(
        {"tasks": {"t2998": {"outputs": {"v": 41}}, "t0": {"outputs": {"v": 0}}}}) == {
        "v": 42, "first": 0}


def test_a_reference_down_a_long_chain_is_not_upstream() -> None:
    names = [f"t{i}" for i in range(2000)]
    tasks = [task(names[0], params={"v": "${{ tasks.t1999.outputs.v }}"})] + [
        task(name, prev) for prev, name in itertools.pairwise(names)]
    with pytest.raises(WorkflowInvalid) as info:
        compile_workflow("chain", spec(*tasks))
    assert [str(p) for p in info.value.problems] == [
        'task "t0": params.v: expression refers to task "t1999", which is not upstream of '
        '"t0"; add it to dependsOn']


def test_more_tasks_than_the_limit_is_refused_naming_count_and_limit() -> None:
    from conveyor_engine.model import MAX_TASKS

    with pytest.raises(WorkflowInvalid) as info:
        compile_workflow("huge", spec(*(task(f"t{i}") for i in range(MAX_TASKS + 1))))
    assert [str(p) for p in info.value.problems] == [
        f"tasks: a workflow has at most {MAX_TASKS} tasks; this one has {MAX_TASKS + 1} "
        f"(split the work into several workflows)"]
    assert len(compile_workflow("at-limit", spec(
        *(task(f"t{i}") for i in range(MAX_TASKS)))).tasks) == MAX_TASKS

TYPED = [
    {"name": "count", "type": "integer", "default": 3},
    {"name": "ratio", "type": "number", "required": False},
    {"name": "name", "type": "string"},
    {"name": "flags", "type": "object", "default": {}},
    {"name": "items", "type": "array", "default": []},
    {"name": "dry", "type": "boolean", "default": False},
    {"name": "anything", "required": False},  # untyped: any JSON value
]


@pytest.mark.parametrize(
    ("given", "problems"),
    [
        ({"name": "a"}, []),
        ({"name": "a", "count": 3.0, "ratio": 2, "anything": [1]}, []),
        ({"name": "a", "count": "3"}, ["inputs.count: expected integer, got string '3'"]),
        ({"name": "a", "count": 2.5}, ["inputs.count: expected integer, got number 2.5"]),
        ({"name": "a", "count": True}, ["inputs.count: expected integer, got boolean True"]),
        ({"name": "a", "ratio": "1.5"}, ["inputs.ratio: expected number, got string '1.5'"]),
        ({"name": 7}, ["inputs.name: expected string, got integer 7"]),
        ({"name": None}, ["inputs.name: expected string, got null"]),
        ({"name": "a", "flags": []}, ["inputs.flags: expected object, got array"]),
        ({"name": "a", "items": {}}, ["inputs.items: expected array, got object"]),
        ({"name": "a", "dry": "false"}, ["inputs.dry: expected boolean, got string 'false'"]),
    ],
)
def test_typed_inputs_check_given_values(given: dict[str, Any], problems: list[str]) -> None:
    wf = compile_workflow("w", spec(task("a"), inputs=TYPED))
    if not problems:
        wf.resolve_inputs(given)
        return
    with pytest.raises(InvalidInputs) as caught:
        wf.resolve_inputs(given)
    assert [str(p) for p in caught.value.problems] == problems


@pytest.mark.parametrize(
    ("input_", "message"),
    [
        ({"name": "n", "type": "integer", "default": "3"},
         "inputs[0].default: expected integer, got string '3'"),
        ({"name": "n", "type": "decimal"},
         "inputs[0].type: Input should be 'string', 'integer', 'number', 'boolean', 'object'"),
    ],
)
def test_typed_input_defaults_must_fit(input_: dict[str, Any], message: str) -> None:
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("w", spec(task("a"), inputs=[input_]))
    assert message in str(caught.value)


def test_untyped_inputs_hash_as_before_types_existed() -> None:
    untyped = compile_workflow("w", spec(task("a"), inputs=[{"name": "k", "default": 1}]))
    assert '"type"' not in untyped.to_json().split('"tasks"')[0]
    typed = compile_workflow("w", spec(task("a"), inputs=[
        {"name": "k", "type": "integer", "default": 1}]))
    assert typed.content_hash != untyped.content_hash
    assert CompiledWorkflow.from_json("w", typed.to_json()).spec.inputs[0].type == "integer"


def test_a_null_default_of_a_typed_input_means_no_value() -> None:
    wf = compile_workflow("w", spec(task("a"), inputs=[{"name": "n", "type": "array",
                                                        "default": None}]))
    assert wf.resolve_inputs({}) == {"n": None}


@pytest.mark.parametrize("type_", ["string", "integer", "number", "boolean", "object", "array"])
@pytest.mark.parametrize("required", [True, False])
def test_typed_inputs_load_back_from_their_stored_form(type_: str, required: bool) -> None:
    """Workers load workflows from the stored JSON: what compiles must load back."""
    wf = compile_workflow("w", spec(task("a"), inputs=[
        {"name": "n", "type": type_, "required": required}]))
    again = CompiledWorkflow.from_json("w", wf.to_json())
    assert again.content_hash == wf.content_hash
    assert again.spec.inputs[0].is_required is required


STORED_BEFORE_STRICTER_CHECKS = {
    # Stored forms an earlier release accepted; their runs may be in flight on upgrade.
    "wait-with-timeout": spec(task("nap", type="wait", params={"duration": "10s"},
                                   timeout="5m")),
    "required-with-default": spec(task("a"), inputs=[
        {"name": "k", "required": True, "default": "a"}]),
    "constant-when": spec(task("a", when="'yes'")),
    "typed-default-mismatch": spec(task("a"), inputs=[
        {"name": "k", "type": "integer", "default": "3"}]),
}


@pytest.mark.parametrize("name", sorted(STORED_BEFORE_STRICTER_CHECKS))
def test_stored_versions_load_although_a_new_spec_like_them_is_refused(name: str) -> None:
    raw = STORED_BEFORE_STRICTER_CHECKS[name]
    with pytest.raises(WorkflowInvalid):
        compile_workflow("w", raw)
    stored = json.dumps(raw)
    loaded = CompiledWorkflow.from_json("w", stored)
    assert loaded.content_hash == compile_workflow("w", raw, strict=False).content_hash


def test_did_you_mean_is_offered_for_the_first_twenty_unknown_task_names_only() -> None:
    """Each suggestion scans every task name: thousands of wrong names in one spec must
    not make compiling quadratic."""
    from conveyor_engine.compiler.compile_pass import MAX_SUGGESTIONS

    tasks = [task(f"step-{i:02d}", f"stpe-{i:02d}") for i in range(30)]
    with pytest.raises(WorkflowInvalid) as info:
        compile_workflow("typos", spec(*tasks))
    messages = [p.message for p in info.value.problems]
    assert len(messages) == 30
    assert sum("did you mean" in m for m in messages) == MAX_SUGGESTIONS == 20
    assert messages[0] == 'no task named "stpe-00"; did you mean "step-00"?'
