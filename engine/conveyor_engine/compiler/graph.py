"""Graph algorithms on a workflow's task graph. Pure functions on plain dicts; no I/O.

A graph is given as ``deps`` (each task to its direct dependencies, in declaration order)
or ``edges`` (each task to its direct dependents); ``index`` is a task's position in the
spec, used to break ties so every result is deterministic. Every function terminates on
graphs with cycles too, because the compiler runs them before it reports the cycle.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Iterator, Mapping, Sequence


def reverse_edges(deps: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Direct dependents of every task: ``{task: [tasks listing it in dependsOn]}``.

    Dependents are listed in the order of ``deps`` (declaration order); every task of
    ``deps`` is a key, with ``[]`` when nothing depends on it. Each dependency named in
    ``deps`` must itself be a key (``KeyError`` otherwise).
    """
    dependents: dict[str, list[str]] = {name: [] for name in deps}
    for name, direct in deps.items():
        for dep in direct:
            dependents[dep].append(name)
    return dependents


def reachable(start: str, edges: Mapping[str, Sequence[str]]) -> frozenset[str]:
    """Every task reachable from ``start`` along ``edges``, ``start`` itself excluded unless
    it lies on a cycle. Breadth-first, so the cost is the size of the answer (its tasks and
    their edges), never the whole graph: with ``deps`` it gives one task's transitive
    dependencies, with dependents (:func:`reverse_edges`) its transitive dependents.
    Raises ``KeyError`` when a task named in ``edges`` is not a key of it."""
    seen: set[str] = set()
    queue = deque(edges[start])
    while queue:
        node = queue.popleft()
        if node not in seen:
            seen.add(node)
            queue.extend(edges[node])
    return frozenset(seen)


def ancestor_masks(
    deps: Mapping[str, Sequence[str]], index: Mapping[str, int], bits: Mapping[str, int]
) -> dict[str, int]:
    """For every task, the bitwise OR of ``bits[a]`` over its transitive dependencies ``a``.

    ``bits`` gives each task of interest a distinct power of two (tasks absent from it
    count as 0), so ``masks[task] & bits[other]`` answers "is ``other`` upstream of
    ``task``?" in one operation. Computed once per strongly connected component, in the
    order Tarjan's algorithm finishes them on ``deps`` (a component after every component
    it depends on), so the work is one OR per edge: near-linear in the graph, instead of
    a set of ancestors per task, which is quadratic in time and memory on a long chain
    (issue 9). Terminates on cycles: members of a cycle are ancestors of each other and of
    themselves.
    """
    masks: dict[str, int] = {}
    for component in strongly_connected(deps, index):
        own = 0
        for member in component:
            own |= bits.get(member, 0)
        cyclic = len(component) > 1 or any(m in deps[m] for m in component)
        mask = own if cyclic else 0
        for member in component:
            for dep in deps[member]:
                if dep not in component:
                    mask |= masks[dep] | bits.get(dep, 0)
        for member in component:
            masks[member] = mask
    return masks


def topological(
    deps: Mapping[str, Sequence[str]], dependents: Mapping[str, Sequence[str]],
    index: Mapping[str, int],
) -> list[str]:
    """Kahn's algorithm; among ready tasks the one declared first comes first.

    Tasks on or behind a cycle never become ready and are left out, so the result is
    shorter than ``deps`` exactly when the graph has a cycle.
    """
    waiting = {name: len(direct) for name, direct in deps.items()}
    ready = [(index[name], name) for name, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in dependents[name]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (index[child], child))
    return order


def strongly_connected(
    edges: Mapping[str, Sequence[str]], index: Mapping[str, int]
) -> Iterator[frozenset[str]]:
    """Tarjan's strongly connected components, iteratively (no recursion limit).

    Yields every component, single tasks included (a component of two or more tasks, or a
    task with an edge to itself, holds a cycle). Roots are visited in ``index`` order.
    """
    counter = 0
    number: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    for root in sorted(edges, key=index.__getitem__):
        if root in number:
            continue
        work = [(root, iter(edges[root]))]
        number[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in number:
                    number[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], number[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == number[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                yield frozenset(component)


def shortest_cycle(
    start: str, edges: Mapping[str, Sequence[str]], component: frozenset[str]
) -> list[str]:
    """The shortest path ``start -> ... -> start`` inside one strongly connected component.

    Breadth-first, children in ``edges`` order. Raises ``AssertionError`` when ``start``
    lies on no cycle within ``component`` (callers pass a component of two or more tasks).
    """
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in edges[node]:
            if child not in component:
                continue
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    raise AssertionError("a strongly connected component always has a cycle")
