"""What expressions read of the runtime context, and selecting just that part of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: What some expressions read of the context: for each root variable, a tree of the keys
#: selected by name, where ``None`` stands for "the whole value".
Reads = dict[str, Any]


def _reads_of(roots: frozenset[str], paths: tuple[tuple[str, ...], ...]) -> Reads:
    reads: Reads = {}
    for path in paths:
        if path[0] in roots:
            reads = _union(reads, _tree(path))
    for root in roots:  # a root the scanner did not see (unexpected) is read whole
        reads.setdefault(root, None)
    return reads


def _tree(path: tuple[str, ...]) -> Reads:
    tree: Any = None
    for key in reversed(path):
        tree = {key: tree}
    return tree


def _union(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    merged = dict(a)
    for key, sub in b.items():
        merged[key] = _union(merged[key], sub) if key in merged else sub
    return merged


def union_reads(reads: Any) -> Reads:
    """The union of several expressions' :data:`Reads`."""
    merged: Reads = {}
    for one in reads:
        merged = _union(merged, one)
    return merged


def _prune(value: Any, tree: Any) -> Any:
    if tree is None or not isinstance(value, Mapping):
        return value
    return {key: _prune(value[key], sub) for key, sub in tree.items() if key in value}


def select(context: Mapping[str, Any], reads: Reads) -> dict[str, Any]:
    """The part of ``context`` that expressions with these ``reads`` can observe.

    The CEL runtime converts every value it is given on each call, so handing it only the
    selected keys keeps a render's cost independent of the size of outputs it does not
    read (a 1 MiB response body next to the one field used). Keys selected but absent stay
    absent, so ``has()`` and missing-key errors behave as on the full context.
    """
    return {root: _prune(context[root], tree) for root, tree in reads.items() if root in context}
