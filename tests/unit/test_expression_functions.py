"""Every function docs/expressions.md lists has an example there, and every example
evaluates to the result the page shows; extension functions are registered only where
called, unknown ones (namespaced too) are refused at compile time, and ``format`` and the
regex functions follow their definitions (cel-go strings.format, Kubernetes regex)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conveyor_engine.expressions import ExpressionError, compile_condition, compile_template
from conveyor_engine.expressions.functions import EXTENSIONS, regex_find_all, string_format
from conveyor_engine.expressions.language import FUNCTIONS
from conveyor_engine.expressions.values import to_json_value

DOC = Path(__file__).resolve().parents[2] / "docs" / "expressions.md"
_ROW = re.compile(r"^\| `?([^|`]+?)`?(?: \([^|]*\))? \| `(.+)` \| `(.+)` \|$")


def documented() -> list[tuple[str, str, str]]:
    """``(function, example, result)`` for each row of the page's Functions section."""
    text = DOC.read_text()
    section = text[text.index("## Functions"):text.index("## Inputs")]
    rows = []
    for line in section.splitlines():
        match = _ROW.match(line)
        if match:
            rows.append((match.group(1).strip(), match.group(2), match.group(3)))
    return rows


ROWS = documented()


def test_the_page_has_a_table_of_examples() -> None:
    assert len(ROWS) > 80, ROWS


@pytest.mark.parametrize(("function", "example", "result"), ROWS,
                         ids=[f"{f}: {e}" for f, e, _ in ROWS])
def test_each_documented_example_gives_the_documented_result(
        function: str, example: str, result: str) -> None:
    rendered = compile_template("${{ " + example + " }}", "params").render({})
    assert to_json_value(rendered) == json.loads(result)


def test_every_function_is_documented_with_an_example() -> None:
    named = {function.split(" ")[0] for function, _, _ in ROWS}
    missing = (set(FUNCTIONS) | set(EXTENSIONS)) - named
    assert not missing, f"functions without an example in docs/expressions.md: {missing}"


@pytest.mark.parametrize(("text", "message"), [
    ("${{ math.nope(1) }}", "unknown function 'math.nope'"),
    ("${{ nope(1) }}", "unknown function 'nope'"),
    ("${{ greatest([1]) }}", "unknown function 'greatest'"),  # only as math.greatest
    ("${{ math.pi }}", "unknown variable 'math'"),
    ("${{ now() }}", "unknown function 'now'"),
])
def test_unknown_functions_are_refused_when_compiled(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        compile_template(text, "params")


def test_extension_functions_work_in_conditions_and_on_runtime_values() -> None:
    condition = compile_condition('inputs.region.upperAscii().startsWith("EU")')
    assert condition.evaluate({"inputs": {"region": "eu-west-1"}}) is True
    assert condition.evaluate({"inputs": {"region": "us-east-1"}}) is False
    template = compile_template("${{ inputs.items.map(i, i.name.lowerAscii()).join(',') }}",
                                "params")
    assert template.render({"inputs": {"items": [{"name": "A"}, {"name": "B"}]}}) == "a,b"


@pytest.mark.parametrize(("template", "args", "result"), [
    ("%s", [None], "null"),
    ("%s/%s", [True, 1.5], "true/1.5"),
    ("%d%%", [50], "50%"),
    ("%.3f", [1], "1.000"),
    ("%e", [1234.5], "1.234500e+03"),
    ("%x %X %o %b", [255, 255, 8, 5], "ff FF 10 101"),
    ("%x", ["hi"], "6869"),
])
def test_format_verbs(template: str, args: list, result: str) -> None:
    assert string_format(template, args) == result


@pytest.mark.parametrize(("template", "args", "message"), [
    ("%s %s", ["one"], "not enough arguments"),
    ("%d", ["x"], "%d expects an integer"),
    ("%f", [True], "%f expects a number"),
])
def test_format_errors_say_what_is_wrong(template: str, args: list, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        string_format(template, args)


def test_find_all_limit_and_bad_patterns() -> None:
    assert regex_find_all("a1b2c3", "[0-9]", 0) == []
    assert regex_find_all("a1b2c3", "[0-9]", -1) == ["1", "2", "3"]
    with pytest.raises(ValueError, match="invalid regular expression"):
        regex_find_all("x", "(")
