"""The WorkerPool CRD refuses exactly the replica bounds the operator's model refuses.

The CRD's CEL rule on ``spec`` stands for the model's defaults when a bound is absent; if the
two disagreed, a spec the API server accepts would become an ``InvalidSpec`` pool later.
Checked with the sandbox API emulation's schema validation (CEL included).
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from conveyor_operator.resources import WorkerPoolSpec
from conveyor_sandbox.apiserver import validation
from tests.support.manifests import CRDS

SCHEMA = yaml.safe_load((CRDS / "workerpools.conveyor.dev.yaml").read_text())[
    "spec"]["versions"][0]["schema"]["openAPIV3Schema"]
MIN_DEFAULT = WorkerPoolSpec.model_fields["min_replicas"].default
MAX_DEFAULT = WorkerPoolSpec.model_fields["max_replicas"].default
MESSAGE = "minReplicas must not exceed maxReplicas (defaults: minReplicas 1, maxReplicas 10)"


def crd_errors(spec: dict[str, Any]) -> list[str]:
    """The API server's messages for a WorkerPool with this spec (none: accepted)."""
    obj = {"apiVersion": "conveyor.dev/v1alpha1", "kind": "WorkerPool",
           "metadata": {"name": "p"}, "spec": spec}
    return [e.detail for e in validation.process(obj, SCHEMA, None).errors]


def model_accepts(spec: dict[str, Any]) -> bool:
    try:
        WorkerPoolSpec.model_validate(spec)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("spec", [
    {},
    {"minReplicas": 0},
    {"minReplicas": 3, "maxReplicas": 3},
    {"minReplicas": 3, "maxReplicas": 2},
    {"minReplicas": 11, "maxReplicas": 20},
    # each bound alone, at and past the other's default
    {"minReplicas": MAX_DEFAULT},
    {"minReplicas": MAX_DEFAULT + 1},
    {"maxReplicas": MIN_DEFAULT},
    {"maxReplicas": max(MIN_DEFAULT - 1, 1)},
    {"minReplicas": 1000, "maxReplicas": 1000},
], ids=repr)
def test_crd_and_model_agree_on_replica_bounds(spec: dict[str, Any]) -> None:
    errors = crd_errors(spec)
    assert (not errors) == model_accepts(spec), errors
    if errors:
        assert errors == [MESSAGE]


def test_the_message_names_the_models_defaults() -> None:
    assert f"minReplicas {MIN_DEFAULT}" in MESSAGE and f"maxReplicas {MAX_DEFAULT}" in MESSAGE
    assert crd_errors({"minReplicas": MAX_DEFAULT + 1}) == [MESSAGE]
