"""Expressions: ``${{ }}`` templates and bare CEL conditions (no services needed)."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from conveyor_engine.expressions import (
    MAX_EXPRESSION_CHARS,
    ExpressionError,
    compile_condition,
    compile_template,
)

CONTEXT: dict[str, Any] = {
    "inputs": {
        "n": 3,
        "name": "bob",
        "flag": True,
        "items": [1, 2, 3],
        "obj": {"a": [1, "b"]},
        "none": None,
        "word": "x",
    },
    "tasks": {
        "fetch": {"outputs": {"id": 7, "tags": ["x", "y"]}, "phase": "Succeeded"},
        "fetch-user": {"outputs": {"login": "octo"}, "phase": "Succeeded"},
        "maybe": {"outputs": {}, "phase": "Skipped"},
    },
    "execution": {"id": "exec-1", "workflow": "demo"},
}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # exactly one template: the typed value
        ("${{ inputs.n }}", 3),
        ("  ${{ inputs.n + 1 }}\n", 4),
        ("${{ inputs.flag }}", True),
        ("${{ null }}", None),
        ("${{ 1.5 }}", 1.5),
        ("${{ inputs.obj }}", {"a": [1, "b"]}),
        ("${{ inputs.items.map(i, i * 2) }}", [2, 4, 6]),
        ("${{ {'a': {'b': '}}'}} }}", {"a": {"b": "}}"}}),
        ("${{ {1: 'one'} }}", {"1": "one"}),
        # anything else: text, values converted like JSON
        ("n=${{ inputs.n }}", "n=3"),
        ("f=${{ inputs.flag }}", "f=true"),
        ("x${{ null }}", "xnull"),
        ("v${{ 1.5 }}", "v1.5"),
        ("o=${{ inputs.obj }}", 'o={"a":[1,"b"]}'),
        ("${{ inputs.name }}-${{ inputs.n }}", "bob-3"),
        ("${{ execution.workflow }}/${{ execution.id }}", "demo/exec-1"),
        # task references, dotted and bracketed
        ("${{ tasks.fetch.outputs.id }}", 7),
        ("${{ tasks['fetch-user'].outputs.login }}", "octo"),
        ('${{ tasks["fetch-user"].outputs.login }}', "octo"),
        ("${{ tasks.maybe.phase == 'Skipped' }}", True),
        # comprehension macros
        ("${{ inputs.items.filter(i, i > 1).size() }}", 2),
        ("${{ inputs.items.all(i, i > 0) }}", True),
        ("${{ inputs.items.exists(i, i == 2) }}", True),
        ("${{ inputs.items.exists_one(i, i > 2) }}", True),
        # CEL types without a JSON form use the proto3 JSON mapping
        ("${{ duration('90s') + duration('500ms') }}", "90.5s"),
        ("${{ timestamp('2024-01-02T03:04:05Z') }}", "2024-01-02T03:04:05Z"),
        ("${{ b'hi' }}", "aGk="),
        # no template, and the escape for a literal "${{"
        ("plain text", "plain text"),
        ("$${{ not a template }}", "${{ not a template }}"),
        ("${{ 'tasks.x' }}", "tasks.x"),
    ],
)
def test_render(source: str, expected: Any) -> None:
    rendered = compile_template(source, "params.v").render(CONTEXT)
    assert rendered == expected
    assert type(rendered) is type(expected)


def test_nested_structures_render_and_static_parts_are_kept() -> None:
    static_headers = {"Accept": "application/json"}
    source = {
        "url": "https://example.test/users/${{ tasks['fetch-user'].outputs.login }}",
        "headers": static_headers,
        "json": {"ids": [1, "${{ tasks.fetch.outputs.id }}", {"deep": "${{ inputs.items }}"}]},
        "${{ inputs.name }}": "dict keys are not templated",
        "count": 5,
    }
    template = compile_template(source, "params")
    rendered = template.render(CONTEXT)
    assert rendered == {
        "url": "https://example.test/users/octo",
        "headers": {"Accept": "application/json"},
        "json": {"ids": [1, 7, {"deep": [1, 2, 3]}]},
        "${{ inputs.name }}": "dict keys are not templated",
        "count": 5,
    }
    assert rendered["headers"] is static_headers  # untemplated parts are not copied
    assert source["json"]["ids"][1] == "${{ tasks.fetch.outputs.id }}"  # source untouched
    assert template.references == {"fetch", "fetch-user"}
    assert template.roots == {"tasks", "inputs"}
    assert [e.field for e in template.expressions] == [
        "params.url",
        "params.json.ids[1]",
        "params.json.ids[2].deep",
    ]


def test_static_template_returns_its_source() -> None:
    source = {"a": [1, {"b": "no templates"}]}
    template = compile_template(source, "params")
    assert template.is_static
    assert template.references == frozenset()
    assert template.render({}) is source


@pytest.mark.parametrize(
    ("source", "references", "roots", "inputs"),
    [
        ("${{ 'tasks.x' + inputs.name }}", set(), {"inputs"}, {"name"}),
        ("${{ \"tasks['y'].outputs\" + 'tasks.z' }}", set(), set(), set()),
        ("${{ r'tasks.x' + '''tasks.y''' }}", set(), set(), set()),
        ("${{ tasks.a.outputs.x + tasks['b-c'].outputs.y }}", {"a", "b-c"}, {"tasks"}, set()),
        ('${{ tasks["d"].phase }}', {"d"}, {"tasks"}, set()),
        ("${{ has(tasks.e.outputs.k) }}", {"e"}, {"tasks"}, set()),
        ("${{ inputs['region'] + inputs.zone }}", set(), {"inputs"}, {"region", "zone"}),
        ("${{ inputs.items.map(x, x + 1) }}", set(), {"inputs"}, {"items"}),
        ("${{ [1, 2].map(x, x + 1) }}", set(), set(), set()),
        # a macro variable may even shadow a root name
        ("${{ inputs.items.map(tasks, tasks) }}", set(), {"inputs"}, {"items"}),
        ("${{ inputs.items.filter(i, i > 1).exists(j, j == 2) }}", set(), {"inputs"}, {"items"}),
        ("${{ inputs.n // tasks.z in a comment\n }}", set(), {"inputs"}, {"n"}),
        ("${{ execution.id }}", set(), {"execution"}, set()),
    ],
)
def test_reference_analysis(
    source: str, references: set[str], roots: set[str], inputs: set[str]
) -> None:
    template = compile_template(source, "params.v")
    assert template.references == references
    assert template.roots == roots
    assert template.inputs == inputs


@pytest.mark.parametrize(
    ("source", "field", "fragment"),
    [
        (
            {"headers": {"Authorization": "Bearer ${{ 1 + }}"}},
            "params.headers.Authorization",
            "does not parse at column 4",
        ),
        ({"list": ["ok", "${{ ) }}"]}, "params.list[1]", "does not parse"),
        ({"a.b": "${{ nope }}"}, "params['a.b']", "unknown variable 'nope'"),
        ("${{ credentials.token }}", "params", "unknown variable 'credentials'"),
        ("${{ tasks[inputs.k].outputs }}", "params", "refer to a task by name"),
        ("${{ size(tasks) }}", "params", "refer to a task by name"),
        ("${{ tasks.exists(t, true) }}", "params", "refer to a task by name"),
        ("${{ tasks.a.output.x }}", "params", "task 'a' has no field 'output'"),
        ("${{ execution.namespace }}", "params", "execution has no field 'namespace'"),
        ("${{ lenght(inputs.name) }}", "params", "unknown function 'lenght'"),
        ("${{ tasks.fetch-user.outputs }}", "params", "brackets: ['fetch-user']"),
        ("${{ [1].map(x, x) + [x] }}", "params", "unknown variable 'x'"),
        ("${{ inputs.x", "params", "unterminated template"),
        ("a ${{ }} b", "params", "empty template"),
        ("${{ inputs.?x }}", "params", "does not parse"),
        ("${{ " + "1 + " * MAX_EXPRESSION_CHARS + "1 }}", "params", "longer than"),
    ],
)
def test_compile_errors_name_the_leaf(source: Any, field: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template(source, "params")
    assert caught.value.field == field
    assert fragment in caught.value.message
    assert str(caught.value) == f"{field}: {caught.value.message}"


def test_every_bad_leaf_is_reported() -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template({"a": "${{ bad1 }}", "b": ["${{ tasks.ok.outputs }}", "${{ 1 + }}"]}, "p")
    assert [e.field for e in caught.value.errors] == ["p.a", "p.b[1]"]


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("${{ inputs.missing }}", "input 'missing' was not given"),
        ("${{ tasks.gone.outputs }}", "task 'gone' has no result in this execution"),
        ("${{ tasks.fetch.outputs.nope }}", "no such key: 'nope'"),
        ("${{ tasks.maybe.outputs.id }}", "no such key: 'id'"),
        ("${{ inputs.n / 0 }}", "division by zero"),
        ("${{ inputs.n + 'a' }}", "No such overload"),
        ("${{ size(inputs.none) }}", "size() does not accept arguments of these types"),
        ("${{ inputs.items[10] }}", "index out of bounds"),
        ("${{ int(inputs.word) }}", "invalid digit"),
        ("id-${{ inputs.missing }}", "input 'missing' was not given"),
    ],
)
def test_render_errors_name_the_field(source: str, fragment: str) -> None:
    template = compile_template({"url": source}, "params")
    with pytest.raises(ExpressionError) as caught:
        template.render(CONTEXT)
    assert caught.value.field == "params.url"
    assert str(caught.value).startswith("params.url: cannot evaluate ")
    assert fragment in caught.value.message


@pytest.mark.parametrize(("source", "fragment"), [
    ("${{ size(null) }}", "size() does not accept arguments of these types"),
    ("${{ int('x') }}", "invalid digit"),
    ("${{ 1 / 0 }}", "division by zero"),
    ("${{ math.sqrt('abc') }}", "math.sqrt() does not accept arguments of these types"),
    ("${{ 'abc'.find(12) }}", "find() does not accept arguments of these types"),
])
def test_an_expression_that_reads_nothing_fails_when_compiled(source: str,
                                                               fragment: str) -> None:
    """It gives the same error on every run, so it is an apply-time problem, in CEL's
    words rather than Python's."""
    with pytest.raises(ExpressionError) as caught:
        compile_template({"url": source}, "params")
    assert caught.value.field == "params.url"
    assert fragment in caught.value.message
    assert "Python" not in caught.value.message


def test_render_sees_only_what_it_reads_but_behaves_as_on_the_full_context() -> None:
    context = copy.deepcopy(CONTEXT)
    context["tasks"]["fetch"]["outputs"]["body"] = "x" * 2_000_000
    template = compile_template(
        {
            "id": "${{ tasks.fetch.outputs.id }}",
            "absent": "${{ has(tasks.fetch.outputs.absent) }}",
            "keys": "${{ 'tags' in tasks.fetch.outputs }}",
        },
        "params",
    )
    before = copy.deepcopy(context)
    assert template.render(context) == {"id": 7, "absent": False, "keys": True}
    assert context == before

    one = compile_template("${{ tasks.fetch.outputs.id }}", "params.id")
    started = time.perf_counter()
    for _ in range(200):
        one.render(context)
    per_render = (time.perf_counter() - started) / 200
    # The 2 MB sibling output is never handed to CEL; converting it would take milliseconds.
    assert per_render < 0.0005


def test_compiled_programs_are_cached_by_text() -> None:
    first = compile_template("${{ inputs.n * 2 }}", "a")
    second = compile_template({"x": "${{ inputs.n * 2 }}"}, "b")
    assert first.expressions[0]._program is second.expressions[0]._program
    assert second.expressions[0].field == "b.x"


def test_one_template_renders_in_tens_of_microseconds() -> None:
    template = compile_template("https://example.test/${{ inputs.name }}", "params.url")
    template.render(CONTEXT)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        template.render(CONTEXT)
    per_render = (time.perf_counter() - started) / rounds
    assert per_render < 200e-6  # ~15 us on a laptop; generous for loaded CI machines


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("inputs.n > 2", True),
        ("inputs.n > 3", False),
        ("tasks.fetch.phase == 'Succeeded'", True),
        ("tasks['fetch-user'].outputs.login.startsWith('oc')", True),
        ("inputs.items.exists(i, i == 3)", True),
        ("'x' in inputs.obj", False),
        ("${{ inputs.flag }}", True),  # one wrapped template is accepted, as in GitHub Actions
        ("execution.workflow == 'demo' && !false", True),
        ("1 < 2", True),  # constant conditions are checked at compile time and still work
        ("false", False),
    ],
)
def test_condition(expression: str, expected: bool) -> None:
    assert compile_condition(expression).evaluate(CONTEXT) is expected


def test_condition_analysis() -> None:
    condition = compile_condition("tasks.fetch.outputs.id > 1 && inputs.flag", "tasks[0].when")
    assert condition.references == {"fetch"}
    assert condition.roots == {"tasks", "inputs"}
    assert condition.inputs == {"flag"}
    assert condition.field == "tasks[0].when"


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("inputs.n +", "does not parse"),
        ("a ${{ inputs.flag }}", "without ${{ }}"),
        ("  ", "empty expression"),
        ("unknown == 1", "unknown variable 'unknown'"),
        # Constant conditions are evaluated once at compile time: no truthiness in CEL.
        ("'yes'", "must evaluate to true or false, but \"'yes'\" gave string yes"),
        ("1", "must evaluate to true or false, but '1' gave int 1"),
        ("${{ [true] }}", "gave list"),
        ("1 / 0 == 1", "division by zero"),
    ],
)
def test_condition_compile_errors(expression: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_condition(expression)
    assert caught.value.field == "when"
    assert fragment in caught.value.message


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("inputs.n", "must evaluate to true or false, but 'inputs.n' gave int 3"),
        ("inputs.name", "gave string bob"),
        ("inputs.nope", "input 'nope' was not given"),
    ],
)
def test_condition_evaluation_errors(expression: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_condition(expression).evaluate(CONTEXT)
    assert caught.value.field == "when"
    assert fragment in caught.value.message


def test_task_root_exposes_name_and_attempt_only() -> None:
    template = compile_template("${{ task.name + '-' + string(task.attempt) }}", "params.key")
    assert template.render({"task": {"name": "fetch", "attempt": 2}}) == "fetch-2"
    with pytest.raises(ExpressionError) as caught:
        compile_template("${{ task.outputs }}", "params.key")
    assert "task has no field 'outputs'" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("${{ 1 + }}", "params.v: '1 +' does not parse at column 4: the expression ends too early"),
        ("${{ a b }}", "params.v: 'a b' does not parse at column 3: unexpected 'b'"),
        ("${{ (1 }}", "params.v: '(1' does not parse at column 3: missing ')' at the end"),
    ],
)
def test_syntax_errors_read_plainly(text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        compile_template(text, "params.v")
    assert str(caught.value) == message
