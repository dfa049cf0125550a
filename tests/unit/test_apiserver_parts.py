"""The emulated API server's own small rules: JSON type names, failure injection, and the
vendored resource catalogue (unchanged from its named source)."""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from typing import Any

import pytest

from conveyor_sandbox.apiserver import registry
from conveyor_sandbox.apiserver.jsontypes import json_type
from conveyor_sandbox.apiserver.reactions import Reaction, Reactions, reason_for
from conveyor_sandbox.apiserver.requestinfo import parse_request_info


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "null"),
        (True, "boolean"),
        (False, "boolean"),   # bool before int: True is an int to Python, never to JSON
        (0, "integer"),
        (3, "integer"),
        (3.0, "number"),      # as decoded: the API server's decoder keeps 3.0 a number
        (1.5, "number"),
        ("", "string"),
        ({}, "object"),
        ({"a": 1}, "object"),
        ([], "array"),
        ((1, 2), "array"),
        (b"x", "bytes"),      # not JSON: named by its Python type, for the message
    ],
)
def test_json_type_names_values_as_json_schema_does(value: Any, expected: str) -> None:
    assert json_type(value) == expected


@pytest.mark.parametrize(
    ("method", "path", "query", "reaction", "matches"),
    [
        ("PATCH", "/api/v1/namespaces/default/configmaps/cm", {},
         ("patch", "", "v1", "configmaps"), True),
        ("PUT", "/api/v1/namespaces/default/configmaps/cm", {},
         ("patch", "", "v1", "configmaps"), False),                 # another verb
        ("PATCH", "/apis/apps/v1/namespaces/default/deployments/d", {},
         ("patch", "", "v1", "configmaps"), False),                 # another resource
        ("GET", "/apis/conveyor.dev/v1alpha1/namespaces/default/executions", {"watch": "1"},
         ("watch", "conveyor.dev", "*", "executions"), True),       # any version
        ("GET", "/apis/conveyor.dev/v1alpha1/namespaces/default/executions", {},
         ("watch", "conveyor.dev", "*", "executions"), False),      # a list, not a watch
        ("GET", "/api/v1/namespaces/x/pods/p", {}, ("*", "*", "*", "*"), True),
        ("GET", "/apis/apps/v1/deployments", {}, ("list", "", "v1", "deployments"), False),
        ("GET", "/version", {}, ("*", "*", "*", "*"), False),       # not a resource request
    ],
)
def test_a_reaction_matches_verb_group_version_and_resource(
    method: str, path: str, query: dict[str, str], reaction: tuple[str, str, str, str],
    matches: bool,
) -> None:
    info = parse_request_info(method, path, query)
    assert Reaction(*reaction, status=503).matches(info) is matches


@pytest.mark.parametrize(
    ("status", "reason"),
    [(404, "NotFound"), (409, "Conflict"), (410, "Expired"), (422, "Invalid"),
     (429, "TooManyRequests"), (500, "InternalError"), (503, "ServiceUnavailable"),
     (504, "Timeout"), (418, "Unknown"), (502, "Unknown")],
)
def test_injected_errors_carry_the_api_servers_reason_for_the_status(
    status: int, reason: str
) -> None:
    assert reason_for(status) == reason
    error = Reaction("get", "", "v1", "pods", status).error()
    assert (error.code, error.reason) == (status, reason)
    assert error.message.startswith(f"injected failure: {status}")


def test_the_first_matching_reaction_answers_and_none_lets_the_api_serve() -> None:
    reactions = Reactions()
    info = parse_request_info("DELETE", "/api/v1/namespaces/default/pods/p", {})
    assert reactions.answer(info) is None
    reactions.add(Reaction("delete", "", "v1", "pods", 429, message="slow down"))
    reactions.add(Reaction("*", "*", "*", "*", 500))
    answer = reactions.answer(info)
    assert answer is not None and (answer.code, answer.reason, answer.message) == (
        429, "TooManyRequests", "slow down")


def test_the_resource_catalogue_is_the_vendored_file_its_readme_names() -> None:
    data = importlib.resources.files("conveyor_sandbox.apiserver").joinpath("data")
    readme = data.joinpath("README.md").read_text()
    named = re.search(r"sha256 `([0-9a-f]{64})`", readme)
    assert named, "data/README.md must name the catalogue's sha256"
    blob = data.joinpath(*registry.CATALOGUE[1:]).read_bytes()
    assert hashlib.sha256(blob).hexdigest() == named.group(1)
    assert "kmock 0.8" in readme and "MIT" in data.joinpath("LICENSE.kmock").read_text()


def test_the_catalogue_serves_the_builtins_the_sandbox_needs() -> None:
    served = {(t.group, t.plural) for t in registry.builtin_types()}
    assert {("", "pods"), ("", "namespaces"), ("", "events"), ("apps", "deployments"),
            ("apiextensions.k8s.io", "customresourcedefinitions"),
            ("coordination.k8s.io", "leases"), ("events.k8s.io", "events")} <= served
    assert not {g for g, _ in served} & {"gateway.networking.k8s.io", "metrics.k8s.io"}
