"""kopf's diff base as a digest: unchanged objects look unchanged, changes are seen, and the
annotation stays small however big the spec is."""

from __future__ import annotations

import copy
import json
from typing import Any

import kopf
import pytest

from conveyor_operator.diffbase import DigestDiffBaseStorage, essence_digest

KEY = "conveyor.dev/last-handled-configuration"


def storage() -> DigestDiffBaseStorage:
    return DigestDiffBaseStorage(prefix="conveyor.dev", key="last-handled-configuration")


def obj(kind: str, spec: dict[str, Any], **annotations: str) -> dict[str, Any]:
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": kind,
            "metadata": {"name": "x", "namespace": "default", "uid": "u-1",
                         "annotations": dict(annotations), "resourceVersion": "1"},
            "spec": spec, "status": {"phase": "Running"}}


def handled(raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` after kopf stored its diff base (the patch applied as the API server would)."""
    store = storage()
    patch = kopf.Patch()
    store.store(body=kopf.Body(raw), patch=patch, essence=store.build(body=kopf.Body(raw)))
    after = copy.deepcopy(raw)
    after["metadata"]["annotations"].update(patch["metadata"]["annotations"])
    return after


BIG = {"tasks": [{"name": f"t{i}", "type": "set", "params": {"v": "x" * 1400}}
                 for i in range(200)]}


@pytest.mark.parametrize("kind", ["Workflow", "Execution"])
def test_an_unchanged_object_fetches_exactly_its_current_essence(kind: str) -> None:
    body = kopf.Body(handled(obj(kind, BIG)))
    assert storage().fetch(body=body) == storage().build(body=body)
    assert body["metadata"]["annotations"][KEY].startswith("sha256:")
    assert len(body["metadata"]["annotations"][KEY]) == len("sha256:") + 64


@pytest.mark.parametrize("kind", ["Workflow", "Execution"])
def test_status_and_metadata_churn_is_no_change(kind: str) -> None:
    raw = handled(obj(kind, {"tasks": [{"name": "a", "type": "set"}]}))
    raw["status"] = {"phase": "Succeeded"}
    raw["metadata"]["resourceVersion"] = "9"
    raw["metadata"]["annotations"]["conveyor.dev/execution_created"] = '{"retries":1}'
    body = kopf.Body(raw)
    assert storage().fetch(body=body) == storage().build(body=body)


@pytest.mark.parametrize(("change", "where"), [
    (lambda raw: raw["spec"]["tasks"].append({"name": "b", "type": "set"}), "spec"),
    (lambda raw: raw["metadata"].setdefault("labels", {}).update(team="a"), "metadata"),
])
def test_a_changed_object_differs_in_what_kopf_diffs(change: Any, where: str) -> None:
    raw = handled(obj("Workflow", {"tasks": [{"name": "a", "type": "set"}]}))
    change(raw)
    body = kopf.Body(raw)
    old, new = storage().fetch(body=body), storage().build(body=body)
    assert old != new
    assert old["spec"] != new["spec"]  # so field="spec" update handlers run


def test_worker_pools_keep_the_full_essence() -> None:
    body = kopf.Body(handled(obj("WorkerPool", {"minReplicas": 1})))
    stored = body["metadata"]["annotations"][KEY]
    assert json.loads(stored) == {"spec": {"minReplicas": 1}}
    assert storage().fetch(body=body) == {"spec": {"minReplicas": 1}}


def test_a_full_copy_written_by_an_earlier_version_is_still_read() -> None:
    raw = obj("Workflow", {"tasks": []}, **{KEY: '{"spec":{"tasks":[]}}\n',
                                           "conveyor.dev/kopf-managed": "yes"})
    assert storage().fetch(body=kopf.Body(raw)) == {"spec": {"tasks": []}}


def test_never_handled_is_none() -> None:
    assert storage().fetch(body=kopf.Body(obj("Execution", {}))) is None


def test_the_digest_ignores_key_order() -> None:
    assert essence_digest({"a": 1, "b": 2}) == essence_digest({"b": 2, "a": 1})
