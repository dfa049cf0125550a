"""Graph algorithms of the compiler, as tables (pure: plain dicts in, plain values out)."""

from __future__ import annotations

import itertools

import pytest

from conveyor_engine.compiler import graph

# Graphs as ``deps``: each task to its direct dependencies, in declaration order.
CHAIN = {"a": (), "b": ("a",), "c": ("b",)}
DIAMOND = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")}
FOREST = {"x": (), "y": (), "z": ("y",)}
# Declared out of dependency order: "late" is declared first but depends on "early".
REVERSED = {"late": ("early",), "early": ()}
CYCLE = {"a": ("c",), "b": ("a",), "c": ("b",), "d": ()}
TWO_CYCLES = {"a": ("b",), "b": ("a",), "c": ("d",), "d": ("c",), "e": ("a", "c")}


def index_of(deps: dict) -> dict[str, int]:
    return {name: i for i, name in enumerate(deps)}


@pytest.mark.parametrize(("deps", "expected"), [
    ({}, {}),
    (CHAIN, {"a": ["b"], "b": ["c"], "c": []}),
    (DIAMOND, {"a": ["b", "c"], "b": ["d"], "c": ["d"], "d": []}),
    (FOREST, {"x": [], "y": ["z"], "z": []}),
    (CYCLE, {"a": ["b"], "b": ["c"], "c": ["a"], "d": []}),
])
def test_reverse_edges(deps: dict, expected: dict) -> None:
    assert graph.reverse_edges(deps) == expected


@pytest.mark.parametrize(("deps", "expected"), [
    (CHAIN, {"a": set(), "b": {"a"}, "c": {"a", "b"}}),
    (DIAMOND, {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"a", "b", "c"}}),
    (FOREST, {"x": set(), "y": set(), "z": {"y"}}),
    # terminates on a cycle: every member reaches every other, itself included
    (CYCLE, {"a": {"a", "b", "c"}, "b": {"a", "b", "c"}, "c": {"a", "b", "c"}, "d": set()}),
])
def test_reachable_along_deps_is_ancestors(deps: dict, expected: dict) -> None:
    assert {name: graph.reachable(name, deps) for name in deps} == {
        k: frozenset(v) for k, v in expected.items()}


@pytest.mark.parametrize(("deps", "expected"), [
    (CHAIN, {"a": {"b", "c"}, "b": {"c"}, "c": set()}),
    (DIAMOND, {"a": {"b", "c", "d"}, "b": {"d"}, "c": {"d"}, "d": set()}),
    (FOREST, {"x": set(), "y": {"z"}, "z": set()}),
])
def test_reachable_along_dependents_is_descendants(deps: dict, expected: dict) -> None:
    dependents = graph.reverse_edges(deps)
    assert {name: graph.reachable(name, dependents) for name in deps} == {
        k: frozenset(v) for k, v in expected.items()}


def masks_as_sets(deps: dict, wanted: str) -> dict[str, set[str]]:
    """:func:`graph.ancestor_masks` with a bit for each task in ``wanted``, read back as
    sets of names so the table reads like the ancestors it encodes."""
    bits = {name: 1 << i for i, name in enumerate(wanted)}
    masks = graph.ancestor_masks(deps, index_of(deps), bits)
    return {task: {name for name, bit in bits.items() if mask & bit}
            for task, mask in masks.items()}


@pytest.mark.parametrize(("deps", "wanted", "expected"), [
    ({}, "", {}),
    (CHAIN, "abc", {"a": set(), "b": {"a"}, "c": {"a", "b"}}),
    (DIAMOND, "abcd", {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"a", "b", "c"}}),
    # only tasks given a bit are reported
    (DIAMOND, "a", {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"a"}}),
    (DIAMOND, "", {"a": set(), "b": set(), "c": set(), "d": set()}),
    (FOREST, "xyz", {"x": set(), "y": set(), "z": {"y"}}),
    (REVERSED, ["early", "late"], {"late": {"early"}, "early": set()}),
    # a cycle's members are ancestors of each other and themselves; what hangs below the
    # cycle sees them all
    (CYCLE, "abcd", {"a": {"a", "b", "c"}, "b": {"a", "b", "c"}, "c": {"a", "b", "c"},
                     "d": set()}),
    (TWO_CYCLES, "abcde", {"a": {"a", "b"}, "b": {"a", "b"}, "c": {"c", "d"},
                           "d": {"c", "d"}, "e": {"a", "b", "c", "d"}}),
    # a self-loop is a cycle of one
    ({"a": ("a",), "b": ("a",)}, "ab", {"a": {"a"}, "b": {"a"}}),
])
def test_ancestor_masks(deps: dict, wanted: str, expected: dict) -> None:
    assert masks_as_sets(deps, wanted) == expected


def test_ancestor_masks_on_a_long_chain_needs_no_recursion() -> None:
    names = [f"t{i}" for i in range(5000)]
    deps = {names[0]: ()} | {n: (prev,) for prev, n in itertools.pairwise(names)}
    masks = graph.ancestor_masks(deps, index_of(deps), {"t0": 1, "t4998": 2})
    assert masks["t4999"] == 3 and masks["t4998"] == 1 and masks["t0"] == 0


@pytest.mark.parametrize(("deps", "expected"), [
    ({}, []),
    (CHAIN, ["a", "b", "c"]),
    (DIAMOND, ["a", "b", "c", "d"]),
    # ties broken by declaration order
    (FOREST, ["x", "y", "z"]),
    ({"b": (), "a": (), "c": ("a", "b")}, ["b", "a", "c"]),
    (REVERSED, ["early", "late"]),
    # tasks on or behind a cycle are left out
    (CYCLE, ["d"]),
    (TWO_CYCLES, []),
])
def test_topological(deps: dict, expected: list) -> None:
    assert graph.topological(deps, graph.reverse_edges(deps), index_of(deps)) == expected


@pytest.mark.parametrize(("deps", "expected"), [
    ({}, set()),
    (CHAIN, {frozenset("a"), frozenset("b"), frozenset("c")}),
    (DIAMOND, {frozenset(n) for n in "abcd"}),
    (CYCLE, {frozenset("abc"), frozenset("d")}),
    (TWO_CYCLES, {frozenset("ab"), frozenset("cd"), frozenset("e")}),
])
def test_strongly_connected(deps: dict, expected: set) -> None:
    found = list(graph.strongly_connected(graph.reverse_edges(deps), index_of(deps)))
    assert len(found) == len(set(found)), "a component was yielded twice"
    assert set(found) == expected


def test_strongly_connected_needs_no_recursion_for_a_long_chain() -> None:
    n = 20_000  # far past Python's default recursion limit
    deps = {f"t{i}": ((f"t{i - 1}",) if i else ()) for i in range(n)}
    deps["t0"] = (f"t{n - 1}",)
    found = list(graph.strongly_connected(graph.reverse_edges(deps), index_of(deps)))
    assert found == [frozenset(deps)]


@pytest.mark.parametrize(("edges", "start", "component", "expected"), [
    ({"a": ["b"], "b": ["a"]}, "a", "ab", ["a", "b", "a"]),
    ({"a": ["b"], "b": ["c"], "c": ["a"]}, "b", "abc", ["b", "c", "a", "b"]),
    # the chord b -> a is shorter than b -> c -> d -> a
    ({"a": ["b"], "b": ["c", "a"], "c": ["d"], "d": ["a"]}, "a", "abcd", ["a", "b", "a"]),
    # edges leaving the component are not followed
    ({"a": ["x", "b"], "b": ["a"], "x": ["a"]}, "a", "ab", ["a", "b", "a"]),
])
def test_shortest_cycle(edges: dict, start: str, component: str, expected: list) -> None:
    assert graph.shortest_cycle(start, edges, frozenset(component)) == expected


def test_shortest_cycle_refuses_a_start_on_no_cycle() -> None:
    with pytest.raises(AssertionError):
        graph.shortest_cycle("a", {"a": ["b"], "b": []}, frozenset("ab"))
