"""The operator's CRD check as a table: installed CRDs vs the ones it was built for."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from conveyor_operator.crdcheck import (
    crd_problems,
    crd_version,
    expected_crds,
    schema_hash,
    served_versions,
)

ROOT = Path(__file__).resolve().parents[2]


def crd(name: str = "executions.conveyor.dev", label: str | None = "1",
        versions: tuple[str, ...] = ("v1alpha1",), schema: dict | None = None,
        columns: list[dict] | None = None) -> dict[str, Any]:
    """A minimal CRD object as the API server or a crds/ file would give it."""
    labels = {"conveyor.dev/crd-version": label} if label is not None else {}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"versions": [
            {"name": v, "served": True, "storage": i == 0, "subresources": {"status": {}},
             "additionalPrinterColumns": columns or [{"name": "Phase", "type": "string",
                                                       "jsonPath": ".status.phase"}],
             "schema": {"openAPIV3Schema": schema or {"type": "object"}}}
            for i, v in enumerate(versions)]},
    }


EXPECTED = [crd(), crd("workflows.conveyor.dev")]
CASES: dict[str, tuple[list[dict], list[str]]] = {
    "all-match": ([crd(), crd("workflows.conveyor.dev")], []),
    "extra-installed-crds-are-ignored": (
        [crd(), crd("workflows.conveyor.dev"), crd("widgets.example.com", label=None)], []),
    "missing": ([crd()], ["CRD workflows.conveyor.dev is not installed; apply the CRDs"]),
    "older-label": ([crd(label="0"), crd("workflows.conveyor.dev")],
                    ["CRD executions.conveyor.dev is version 0, this operator needs version 1: "
                     "apply the CRDs of Conveyor"]),
    "unlabelled": ([crd(label=None), crd("workflows.conveyor.dev")],
                   ["CRD executions.conveyor.dev is unlabelled, this operator needs version 1"]),
    "version-not-served": ([crd(versions=("v1beta1",)), crd("workflows.conveyor.dev")],
                           ["CRD executions.conveyor.dev does not serve v1alpha1"]),
    "schema-edited-by-hand": (
        [crd(schema={"type": "object", "properties": {"x": {"type": "string"}}}),
         crd("workflows.conveyor.dev")],
        ["CRD executions.conveyor.dev is labelled version 1 but its schema differs"]),
    "printer-columns-changed": (
        [crd(columns=[{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]),
         crd("workflows.conveyor.dev")],
        ["CRD executions.conveyor.dev is labelled version 1 but its schema differs"]),
    "two-problems-two-messages": (
        [], ["CRD executions.conveyor.dev is not installed", "CRD workflows.conveyor.dev is not"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_crd_problems(case: str) -> None:
    installed, expected_starts = CASES[case]
    problems = crd_problems(installed, EXPECTED)
    assert len(problems) == len(expected_starts), problems
    for problem, start in zip(problems, expected_starts, strict=True):
        assert problem.startswith(start), problem


def test_every_message_says_what_to_do() -> None:
    for installed, _ in CASES.values():
        for problem in crd_problems(installed, EXPECTED):
            assert "helm upgrade" in problem and "kubectl apply --server-side" in problem


def test_schema_hash_ignores_key_order_and_server_defaults() -> None:
    base = crd()
    reordered = yaml.safe_load(yaml.safe_dump(base, sort_keys=True))
    assert schema_hash(reordered) == schema_hash(base)
    defaulted = copy.deepcopy(base)
    defaulted["spec"]["conversion"] = {"strategy": "None"}
    for column in defaulted["spec"]["versions"][0]["additionalPrinterColumns"]:
        column["priority"] = 0
    assert schema_hash(defaulted) == schema_hash(base)
    floats = crd(schema={"type": "integer", "minimum": 1.0, "maximum": 10.0})
    assert schema_hash(floats) == schema_hash(crd(schema={"type": "integer", "minimum": 1,
                                                          "maximum": 10}))
    assert schema_hash(floats) != schema_hash(crd(schema={"type": "integer", "minimum": 1.5}))


def test_unserved_versions_do_not_count() -> None:
    base = crd(versions=("v1alpha1", "v1alpha0"))
    retired = copy.deepcopy(base)
    retired["spec"]["versions"][1]["served"] = False
    assert served_versions(retired) == {"v1alpha1"}
    assert schema_hash(retired) == schema_hash(crd())


def test_expected_crds_are_the_repository_crds() -> None:
    found = {c["metadata"]["name"]: c for c in expected_crds()}
    files = sorted((ROOT / "crds").glob("*.yaml"))
    assert sorted(found) == sorted(yaml.safe_load(f.read_text())["metadata"]["name"]
                                   for f in files)
    assert all(crd_version(c) for c in found.values())
    assert crd_problems(list(found.values()), list(found.values())) == []


def test_expected_crds_names_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        expected_crds((tmp_path,))
