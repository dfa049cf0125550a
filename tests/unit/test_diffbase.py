"""kopf's diff base as per-part digests: unchanged objects look unchanged, a change shows in
the part that changed and only there, and the annotation stays small however big the spec."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import kopf
import pytest

from conveyor_operator.diffbase import (
    DIGESTS_KEY,
    STAND_IN_KEY,
    DigestDiffBaseStorage,
    essence_digest,
    last_handled,
)

KEY = "conveyor.dev/last-handled-configuration"


def storage() -> DigestDiffBaseStorage:
    return DigestDiffBaseStorage(prefix="conveyor.dev", key="last-handled-configuration")


def obj(kind: str, spec: dict[str, Any], labels: dict[str, str] | None = None,
        **annotations: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "x", "namespace": "default", "uid": "u-1",
                            "annotations": dict(annotations), "resourceVersion": "1"}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": kind, "metadata": meta,
            "spec": spec, "status": {"phase": "Running"}}


def handled(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` after kopf stored its diff base (the patch applied as the API server would)."""
    store = storage()
    patch = kopf.Patch()
    store.store(body=kopf.Body(raw), patch=patch, essence=store.build(body=kopf.Body(raw)))
    after = copy.deepcopy(raw)
    after["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    return after


def old_and_new(raw: dict[str, Any]) -> tuple[Any, Any]:
    body = kopf.Body(raw)
    return storage().fetch(body=body), storage().build(body=body)


BIG = {"tasks": [{"name": f"t{i}", "type": "set", "params": {"v": "x" * 1400}}
                 for i in range(200)]}
SMALL = {"tasks": [{"name": "a", "type": "set"}]}


@pytest.mark.parametrize("kind", ["Workflow", "Execution"])
def test_an_unchanged_object_fetches_exactly_its_current_essence(kind: str) -> None:
    raw = handled(obj(kind, BIG, labels={"team": "a"}))
    old, new = old_and_new(raw)
    assert old == new
    stored = json.loads(raw["metadata"]["annotations"][KEY])
    assert set(stored[DIGESTS_KEY]) == {"spec", "metadata.labels"}
    assert len(raw["metadata"]["annotations"][KEY]) < 300  # not 290 KB of spec


@pytest.mark.parametrize("kind", ["Workflow", "Execution"])
def test_status_and_kopf_bookkeeping_are_no_change(kind: str) -> None:
    raw = handled(obj(kind, SMALL))
    raw["status"] = {"phase": "Succeeded"}
    raw["metadata"]["resourceVersion"] = "9"
    raw["metadata"]["annotations"]["conveyor.dev/execution_created"] = '{"retries":1}'
    old, new = old_and_new(raw)
    assert old == new


def add_task(raw: dict[str, Any]) -> None:
    raw["spec"]["tasks"].append({"name": "b", "type": "set"})


def add_label(raw: dict[str, Any]) -> None:
    raw["metadata"].setdefault("labels", {})["team"] = "b"


def drop_labels(raw: dict[str, Any]) -> None:
    raw["metadata"].pop("labels")


def annotate(raw: dict[str, Any]) -> None:
    raw["metadata"]["annotations"]["example.com/note"] = "hi"


@pytest.mark.parametrize(("change", "spec_changed"), [
    (add_task, True),
    (add_label, False),   # a label or annotation edit must not run field="spec" handlers
    (drop_labels, False),
    (annotate, False),
])
def test_a_change_shows_in_its_own_part_only(change: Callable[[dict[str, Any]], None],
                                             spec_changed: bool) -> None:
    raw = handled(obj("Workflow", copy.deepcopy(SMALL), labels={"team": "a"}))
    change(raw)
    old, new = old_and_new(raw)
    assert old != new
    assert (old["spec"] != new["spec"]) is spec_changed


def test_last_handled_table() -> None:
    spec, labels = {"a": 1}, {"l": "1"}
    digests = {"spec": essence_digest(spec), "metadata.labels": essence_digest(labels)}
    same = {"spec": spec, "metadata": {"labels": labels}}
    assert last_handled(same, digests) == same
    edited = {"spec": {"a": 2}, "metadata": {"labels": labels}}
    assert last_handled(edited, digests) == {
        "spec": {STAND_IN_KEY: digests["spec"]}, "metadata": {"labels": labels}}
    gone = {"spec": spec}
    assert last_handled(gone, digests) == {
        "spec": spec, "metadata": {"labels": {STAND_IN_KEY: digests["metadata.labels"]}}}
    added = {"spec": spec, "metadata": {"labels": labels, "annotations": {"n": "1"}}}
    assert last_handled(added, digests) == same


def test_worker_pools_keep_the_full_essence() -> None:
    raw = handled(obj("WorkerPool", {"minReplicas": 1}))
    assert json.loads(raw["metadata"]["annotations"][KEY]) == {"spec": {"minReplicas": 1}}
    assert old_and_new(raw)[0] == {"spec": {"minReplicas": 1}}


def test_a_full_copy_written_by_an_earlier_version_is_still_read() -> None:
    raw = obj("Workflow", {"tasks": []}, **{KEY: '{"spec":{"tasks":[]}}\n',
                                           "conveyor.dev/kopf-managed": "yes"})
    assert storage().fetch(body=kopf.Body(raw)) == {"spec": {"tasks": []}}


def test_never_handled_is_none() -> None:
    assert storage().fetch(body=kopf.Body(obj("Execution", {}))) is None


def test_the_digest_ignores_key_order() -> None:
    assert essence_digest({"a": 1, "b": 2}) == essence_digest({"b": 2, "a": 1})
