"""What the operator knows of the Workflows it has compiled, for the sub-workflow checks
(issue 12): each one's :class:`~conveyor_engine.api.WorkflowFacts` (declared inputs, the
children its ``workflow`` tasks name literally) by engine name ``"<namespace>/<name>"``.

The facts are passed to :meth:`Engine.register <conveyor_engine.api.Engine.register>`, so a
cycle (``team/a -> team/b -> team/a``) and inputs a child refuses are ``InvalidSpec`` at
apply, and a child not applied yet makes its parent wait (``ChildWorkflowNotFound``). A
Workflow counts as known once its spec has a valid shape, even if it does not compile (a
cycle is found through invalid members too). When a Workflow's facts change (created,
inputs or children changed, deleted), every Workflow that calls it is compiled again
(:meth:`WorkflowGraph.set` returns them); a compile that changes nothing writes no status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conveyor_engine.api import WorkflowFacts, facts_of_raw

#: A Workflow by ``(namespace, name)``.
Key = tuple[str, str]


def engine_name(key: Key) -> str:
    """``"<namespace>/<name>"``: how the operator registers a Workflow with the engine."""
    return f"{key[0]}/{key[1]}"


class WorkflowGraph:
    """Facts of the Workflows seen, by engine name (pure bookkeeping, no I/O)."""

    def __init__(self) -> None:
        self.facts: dict[str, WorkflowFacts] = {}

    def set(self, key: Key, spec: Mapping[str, Any] | None) -> list[Key]:
        """Record the facts of Workflow ``key`` from its raw ``spec`` (None: deleted);
        return the other Workflows that call it, sorted, when its facts changed (they
        must be compiled again), else ``[]``."""
        name = engine_name(key)
        facts = None if spec is None else facts_of_raw(name, spec)
        before = self.facts.get(name)
        if facts is None:
            self.facts.pop(name, None)
        else:
            self.facts[name] = facts
        if facts == before:
            return []
        return self.callers(name)

    def callers(self, name: str) -> list[Key]:
        """The Workflows (other than ``name``) whose ``workflow`` tasks name ``name``."""
        found = []
        for caller, facts in self.facts.items():
            if caller != name and name in facts.children:
                namespace, _, short = caller.partition("/")
                found.append((namespace, short))
        return sorted(found)
