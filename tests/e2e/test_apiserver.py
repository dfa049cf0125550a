"""The sandbox Kubernetes API server behaves like a real one for kubectl, kopf and raw HTTP.

Each test gets a fresh server (see conftest). A small CRD, ``widgets.test.conveyor.dev``, has
what our CRDs use: a status subresource, printer columns, a short name, a category, a required
field, an enum, bounds, and an immutability CEL rule.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from conveyor_sandbox.apiserver import SandboxApiServer
from tests.e2e.kubectl import Kubectl
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e

GROUP, VERSION, PLURAL = "test.conveyor.dev", "v1", "widgets"
WIDGETS = f"/apis/{GROUP}/{VERSION}/namespaces/default/widgets"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}

CRD = textwrap.dedent("""\
    apiVersion: apiextensions.k8s.io/v1
    kind: CustomResourceDefinition
    metadata:
      name: widgets.test.conveyor.dev
    spec:
      group: test.conveyor.dev
      scope: Namespaced
      names:
        kind: Widget
        plural: widgets
        singular: widget
        shortNames: [wdg]
        categories: [conveyor-test]
      versions:
        - name: v1
          served: true
          storage: true
          subresources:
            status: {}
          additionalPrinterColumns:
            - {name: Size, type: string, jsonPath: .spec.size}
            - name: Ready
              type: string
              jsonPath: .status.conditions[?(@.type=="Ready")].status
            - {name: Count, type: integer, jsonPath: .spec.count}
            - {name: Age, type: date, jsonPath: .metadata.creationTimestamp}
          schema:
            openAPIV3Schema:
              type: object
              required: [spec]
              properties:
                spec:
                  type: object
                  required: [size]
                  x-kubernetes-validations:
                    - rule: self.size == oldSelf.size
                      message: size is immutable
                  properties:
                    size: {type: string, enum: [small, large]}
                    count: {type: integer, minimum: 0, maximum: 10}
                    color: {type: string, default: grey}
                status:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
                  properties:
                    phase: {type: string}
                    conditions:
                      type: array
                      items:
                        type: object
                        required: [type, status]
                        properties:
                          type: {type: string}
                          status: {type: string, enum: ["True", "False", "Unknown"]}
    """)


def widget_yaml(name: str, size: str = "small", count: int = 3, **extra_spec: Any) -> str:
    spec = {"size": size, "count": count, **extra_spec}
    return json.dumps({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget",
                       "metadata": {"name": name}, "spec": spec})


def widget(name: str, size: str = "small", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget",
            "metadata": {"name": name, **meta}, "spec": {"size": size, "count": 1}}


async def install_crd(kubectl: Kubectl) -> None:
    applied = await kubectl.run("apply", "-f", "-", stdin=CRD)
    assert "customresourcedefinition.apiextensions.k8s.io/widgets.test.conveyor.dev created" in (
        applied.stdout)
    await kubectl.run("wait", "--for=condition=Established", "--timeout=10s",
                      "crd/widgets.test.conveyor.dev")


async def call(http: aiohttp.ClientSession, method: str, path: str, body: Any = None,
               headers: dict[str, str] | None = None, **params: str) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body)
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    async with http.request(method, path, data=data, headers=hdrs, params=params) as response:
        assert response.content_type == "application/json", await response.text()
        return response.status, await response.json()


def assert_status(payload: dict[str, Any], code: int, reason: str) -> None:
    assert payload["kind"] == "Status", payload
    assert payload["apiVersion"] == "v1"
    assert payload["status"] == "Failure"
    assert payload["code"] == code, payload
    assert payload["reason"] == reason, payload
    assert payload["message"]


async def seen_request(apiserver: SandboxApiServer, **expected: Any) -> None:
    """Wait until a request with these record fields (and given query params) has arrived."""
    query = expected.pop("query", {})

    async def probe() -> bool:
        return any(
            all(getattr(r, k) == v for k, v in expected.items())
            and all(r.query.get(k) == v for k, v in query.items())
            for r in apiserver.requests
        )

    await eventually(probe, what=f"a request like {expected} {query}", timeout=30)


class Watch:
    """A raw watch stream read event by event, for assertions on event sequences."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        line = await asyncio.wait_for(self.response.content.readline(), timeout)
        assert line, "the watch stream ended"
        return json.loads(line)


# --- discovery and robustness ---------------------------------------------------------------


async def test_discovery_documents(http: aiohttp.ClientSession) -> None:
    status, version = await call(http, "GET", "/version")
    assert status == 200 and version["major"] == "1" and version["gitVersion"].startswith("v1.")
    _, api = await call(http, "GET", "/api")
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]

    _, core = await call(http, "GET", "/api/v1")
    names = {r["name"]: r for r in core["resources"]}
    assert core["kind"] == "APIResourceList" and core["groupVersion"] == "v1"
    assert {"namespaces", "events", "pods", "pods/status", "configmaps"} <= set(names)
    assert names["namespaces"]["namespaced"] is False and "ns" in names["namespaces"]["shortNames"]
    assert names["pods"]["kind"] == "Pod" and "watch" in names["pods"]["verbs"]

    _, groups = await call(http, "GET", "/apis")
    served = {g["name"]: g for g in groups["groups"]}
    for group in ("apps", "events.k8s.io", "coordination.k8s.io", "apiextensions.k8s.io"):
        assert group in served, group
    assert served["apps"]["preferredVersion"]["version"] == "v1"

    _, apps = await call(http, "GET", "/apis/apps")
    assert apps["kind"] == "APIGroup" and apps["name"] == "apps"
    _, apps_v1 = await call(http, "GET", "/apis/apps/v1")
    entries = {r["name"]: r for r in apps_v1["resources"]}
    assert entries["deployments"]["kind"] == "Deployment"
    assert entries["deployments/status"]["kind"] == "Deployment"
    assert entries["deployments/scale"].items() >= {
        "kind": "Scale", "group": "autoscaling", "version": "v1"}.items()
    _, leases = await call(http, "GET", "/apis/coordination.k8s.io/v1")
    assert "leases" in {r["name"] for r in leases["resources"]}
    _, events = await call(http, "GET", "/apis/events.k8s.io/v1")
    assert "events" in {r["name"] for r in events["resources"]}


async def test_namespaces_list_and_get(http: aiohttp.ClientSession, kubectl: Kubectl) -> None:
    status, namespaces = await call(http, "GET", "/api/v1/namespaces")
    assert status == 200
    assert namespaces["kind"] == "NamespaceList" and namespaces["apiVersion"] == "v1"
    assert int(namespaces["metadata"]["resourceVersion"]) > 0
    assert "default" in {ns["metadata"]["name"] for ns in namespaces["items"]}
    _, default = await call(http, "GET", "/api/v1/namespaces/default")
    assert default["status"]["phase"] == "Active"

    # kubectl's typed clients send protobuf bodies: create namespace/configmap/secret.
    await kubectl.run("create", "namespace", "team-a")
    await kubectl.run("create", "configmap", "settings", "-n", "team-a", "--from-literal=a=b")
    await kubectl.run("create", "secret", "generic", "pw", "-n", "team-a", "--from-literal=p=x")
    _, secret = await call(http, "GET", "/api/v1/namespaces/team-a/secrets/pw")
    assert secret["data"] == {"p": "eA=="} and secret["type"] == "Opaque"
    printed = await kubectl.run("get", "namespaces")
    assert printed.stdout.split("\n")[0].split() == ["NAME", "STATUS", "AGE"]
    assert any(line.split()[:2] == ["team-a", "Active"] for line in printed.stdout.splitlines())
    deleted = await kubectl.run("delete", "namespace", "team-a")  # waits until it is gone
    assert 'namespace "team-a" deleted' in deleted.stdout
    assert (await call(http, "GET", "/api/v1/namespaces/team-a/configmaps/settings"))[0] == 404
    status, kept = await call(http, "DELETE", "/api/v1/namespaces/default")
    assert status == 403 and kept["reason"] == "Forbidden"


async def test_unknown_paths_answer_a_status_404(http: aiohttp.ClientSession) -> None:
    for path in ("/nope", "/apis/nope.example.com/v1", "/apis/nope.example.com/v1/things",
                 "/api/v1/namespaces/default/nothings", "/api/v1/namespaces/default/pods/x/log",
                 "/openapi/v3/apis/nope.example.com/v1"):
        status, payload = await call(http, "GET", path)
        assert status == 404, path
        assert_status(payload, 404, "NotFound")


async def test_request_records_describe_the_api_meaning(
    apiserver: SandboxApiServer, http: aiohttp.ClientSession
) -> None:
    await call(http, "GET", "/api/v1/namespaces/default/configmaps", watch="1",
               timeoutSeconds="1")
    await call(http, "POST", "/api/v1/namespaces/default/configmaps",
               {"metadata": {"name": "cm"}, "data": {"a": "b"}})
    await call(http, "PATCH", "/api/v1/namespaces/default/configmaps/cm", {"data": {"a": "c"}},
               MERGE)
    await call(http, "GET", "/api/v1/namespaces/default/configmaps", fieldSelector="metadata"
               ".name=cm")
    await call(http, "DELETE", "/api/v1/namespaces/default/configmaps/cm")
    await call(http, "GET", "/apis")
    seen = [(r.verb, r.resource, r.namespace, r.name, r.status) for r in apiserver.requests]
    assert seen == [
        ("watch", "configmaps", "default", "", 200),
        ("create", "configmaps", "default", "", 201),
        ("patch", "configmaps", "default", "cm", 200),
        ("list", "configmaps", "default", "cm", 200),
        ("delete", "configmaps", "default", "cm", 200),
        ("get", "", "", "", 200),
    ]
    assert apiserver.requests[2].method == "PATCH" and apiserver.requests[2].group == ""


# --- CRDs and kubectl -------------------------------------------------------------------------


async def test_crd_registers_a_resource_for_discovery_and_kubectl(
    apiserver: SandboxApiServer, http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    _, crd = await call(http, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                        "widgets.test.conveyor.dev")
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions == {"NamesAccepted": "True", "Established": "True"}
    assert crd["status"]["acceptedNames"]["kind"] == "Widget"
    assert crd["spec"]["names"]["listKind"] == "WidgetList"

    _, resources = await call(http, "GET", f"/apis/{GROUP}/{VERSION}")
    entries = {r["name"]: r for r in resources["resources"]}
    assert entries["widgets"]["kind"] == "Widget" and entries["widgets"]["namespaced"] is True
    assert entries["widgets"]["shortNames"] == ["wdg"]
    assert entries["widgets"]["categories"] == ["conveyor-test"]
    assert entries["widgets/status"]["verbs"] == ["get", "patch", "update"]

    first = await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w1"))
    assert first.stdout.strip() == "widget.test.conveyor.dev/w1 created"
    second = await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w1"))
    assert second.stdout.strip() == "widget.test.conveyor.dev/w1 unchanged"

    for name in ("widgets", "widget", "wdg", "widgets.test.conveyor.dev", "conveyor-test"):
        table = await kubectl.run("get", name)
        header, row = table.stdout.splitlines()[:2]
        assert header.split() == ["NAME", "SIZE", "READY", "COUNT", "AGE"], name
        assert row.split()[:3] == ["w1", "small", "3"], name  # no READY yet: an empty cell

    stored = json.loads((await kubectl.run("get", "widget", "w1", "-o", "json")).stdout)
    meta = stored["metadata"]
    assert meta["generation"] == 1 and meta["namespace"] == "default"
    assert len(meta["uid"]) == 36 and int(meta["resourceVersion"]) > 0
    assert meta["creationTimestamp"].endswith("Z")
    assert stored["spec"]["color"] == "grey"  # schema default applied
    assert apiserver.objects(GROUP, VERSION, PLURAL, "default")[0]["metadata"]["uid"] == (
        meta["uid"])

    deleted = await kubectl.run("delete", "-f", "-", stdin=widget_yaml("w1"))
    assert 'widget.test.conveyor.dev "w1" deleted' in deleted.stdout
    assert apiserver.objects(GROUP, VERSION, PLURAL) == []
    assert "No resources found" in (await kubectl.run("get", "wdg")).output


async def test_schema_and_cel_violations_name_the_field(
    http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    bad = await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w1", size="huge", count=11),
                            check=False)
    assert bad.returncode != 0
    assert 'spec.size: Unsupported value: "huge": supported values: "small", "large"' in (
        bad.stderr)
    assert "spec.count: Invalid value: 11: spec.count in body should be less than or equal to " \
        "10" in bad.stderr

    missing = json.dumps({"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget",
                          "metadata": {"name": "w2"}, "spec": {"count": 1}})
    rejected = await kubectl.run("apply", "-f", "-", stdin=missing, check=False)
    assert 'The Widget "w2" is invalid: spec.size: Required value' in rejected.stderr

    unknown = await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w3", extra=1),
                                check=False)
    assert 'strict decoding error: unknown field "spec.extra"' in unknown.stderr

    await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w1"))
    changed = await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w1", size="large"),
                                check=False)
    assert 'The Widget "w1" is invalid: spec: Invalid value: "object": size is immutable' in (
        changed.stderr)

    # Without fieldValidation (the API default is Warn), unknown fields are pruned with a warning.
    async with http.post(WIDGETS, json=widget("w4") | {"spec": {"size": "small", "x": 1}}) as r:
        assert r.status == 201
        assert r.headers.getall("Warning") == ['299 - "unknown field \\"spec.x\\""']
        assert "x" not in (await r.json())["spec"]
    status, invalid = await call(http, "POST", WIDGETS, widget("w5", size="huge"))
    assert status == 422
    assert_status(invalid, 422, "Invalid")
    assert invalid["details"]["kind"] == "Widget" and invalid["details"]["group"] == GROUP
    assert invalid["details"]["causes"] == [{
        "reason": "FieldValueNotSupported", "field": "spec.size",
        "message": 'Unsupported value: "huge": supported values: "small", "large"'}]


async def test_status_subresource_semantics(http: aiohttp.ClientSession,
                                             kubectl: Kubectl) -> None:
    await install_crd(kubectl)
    status, created = await call(http, "POST", WIDGETS,
                                 widget("w1") | {"status": {"phase": "Ignored"}})
    assert status == 201 and "status" not in created  # create cannot set status
    rv0 = int(created["metadata"]["resourceVersion"])

    # A main-resource write ignores .status; metadata-only changes keep the generation.
    _, labelled = await call(http, "PATCH", f"{WIDGETS}/w1",
                             {"metadata": {"labels": {"a": "b"}}, "status": {"phase": "No"}},
                             MERGE)
    assert "status" not in labelled and labelled["metadata"]["labels"] == {"a": "b"}
    assert labelled["metadata"]["generation"] == 1
    rv1 = int(labelled["metadata"]["resourceVersion"])
    assert rv1 > rv0

    # A /status write changes only .status and bumps resourceVersion, not generation.
    _, patched = await call(http, "PATCH", f"{WIDGETS}/w1/status",
                            {"spec": {"count": 9}, "status": {"phase": "Running"}}, MERGE)
    assert patched["status"] == {"phase": "Running"} and patched["spec"]["count"] == 1
    assert patched["metadata"]["generation"] == 1
    rv2 = int(patched["metadata"]["resourceVersion"])
    assert rv2 > rv1

    # A spec change bumps the generation; the status written before survives.
    _, respecced = await call(http, "PATCH", f"{WIDGETS}/w1", {"spec": {"count": 2}}, MERGE)
    assert respecced["metadata"]["generation"] == 2 and respecced["status"] == {
        "phase": "Running"}

    # A write that changes nothing stores nothing: same resourceVersion (as etcd skips it).
    _, same = await call(http, "PATCH", f"{WIDGETS}/w1", {"spec": {"count": 2}}, MERGE)
    assert same["metadata"]["resourceVersion"] == respecced["metadata"]["resourceVersion"]

    # Status is validated against the schema too.
    status, invalid = await call(http, "PATCH", f"{WIDGETS}/w1/status",
                                 {"status": {"conditions": [{"type": "Ready", "status": "Yes"}]}},
                                 MERGE)
    assert status == 422 and "status.conditions[0].status" in invalid["message"]


async def test_json_patch_test_failure_is_422_and_stale_put_is_409(
    http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    _, created = await call(http, "POST", WIDGETS, widget("w1"))
    rv = created["metadata"]["resourceVersion"]

    status, failed = await call(http, "PATCH", f"{WIDGETS}/w1", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "1"},
        {"op": "replace", "path": "/spec/count", "value": 5},
    ], JSON_PATCH)
    assert status == 422
    assert_status(failed, 422, "Invalid")
    status, applied = await call(http, "PATCH", f"{WIDGETS}/w1", [
        {"op": "test", "path": "/metadata/resourceVersion", "value": rv},
        {"op": "replace", "path": "/spec/count", "value": 5},
    ], JSON_PATCH)
    assert status == 200 and applied["spec"]["count"] == 5

    stale = dict(created, spec={"size": "small", "count": 7})
    status, conflict = await call(http, "PUT", f"{WIDGETS}/w1", stale)
    assert status == 409
    assert_status(conflict, 409, "Conflict")
    assert "the object has been modified" in conflict["message"]

    unconditional = dict(stale, metadata={"name": "w1"})
    status, refused = await call(http, "PUT", f"{WIDGETS}/w1", unconditional)
    assert status == 422 and "metadata.resourceVersion" in refused["message"]

    fresh = dict(applied, spec={"size": "small", "count": 7})
    status, replaced = await call(http, "PUT", f"{WIDGETS}/w1", fresh)
    assert status == 200 and replaced["spec"] == {"size": "small", "count": 7, "color": "grey"}
    assert replaced["metadata"]["generation"] == 3

    status, unsupported = await call(http, "PATCH", f"{WIDGETS}/w1", {}, {
        "Content-Type": "text/plain"})
    assert status == 415
    assert_status(unsupported, 415, "UnsupportedMediaType")


async def test_create_get_and_delete_errors_are_status_objects(
    http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    assert (await call(http, "POST", WIDGETS, widget("w1")))[0] == 201
    status, duplicate = await call(http, "POST", WIDGETS, widget("w1"))
    assert status == 409
    assert_status(duplicate, 409, "AlreadyExists")
    assert duplicate["message"] == 'widgets.test.conveyor.dev "w1" already exists'

    status, generated = await call(http, "POST", WIDGETS,
                                   widget("") | {"metadata": {"generateName": "w-"}})
    assert status == 201 and generated["metadata"]["name"].startswith("w-")
    assert len(generated["metadata"]["name"]) == len("w-") + 5

    status, missing = await call(http, "GET", f"{WIDGETS}/nope")
    assert status == 404
    assert_status(missing, 404, "NotFound")
    assert missing["message"] == 'widgets.test.conveyor.dev "nope" not found'
    assert missing["details"] == {"name": "nope", "group": GROUP, "kind": "widgets"}
    assert (await call(http, "DELETE", f"{WIDGETS}/nope"))[0] == 404

    status, no_ns = await call(http, "POST", f"/apis/{GROUP}/{VERSION}/namespaces/ghost/widgets",
                               widget("w1"))
    assert status == 404 and no_ns["message"] == 'namespaces "ghost" not found'

    printed = await kubectl.run("get", "widget", "nope", check=False)
    assert 'Error from server (NotFound): widgets.test.conveyor.dev "nope" not found' in (
        printed.stderr)


async def test_finalizers_hold_deletion_until_removed(
    http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    _, created = await call(http, "POST", WIDGETS,
                            widget("w1", finalizers=["test.conveyor.dev/hold"]))
    since = created["metadata"]["resourceVersion"]
    async with http.get(WIDGETS, params={"watch": "true", "resourceVersion": since}) as response:
        assert response.headers["Content-Type"].startswith("application/json")
        events = Watch(response)
        status, marked = await call(http, "DELETE", f"{WIDGETS}/w1")
        assert status == 202
        assert marked["metadata"]["deletionTimestamp"].endswith("Z")
        assert marked["metadata"]["deletionGracePeriodSeconds"] == 0
        assert (await call(http, "GET", f"{WIDGETS}/w1"))[0] == 200  # still there

        status, forbidden = await call(http, "PATCH", f"{WIDGETS}/w1",
                                       {"metadata": {"finalizers": ["a/b", "test.conveyor.dev/"
                                                                           "hold"]}}, MERGE)
        assert status == 422 and "no new finalizers can be added" in forbidden["message"]

        status, _ = await call(http, "PATCH", f"{WIDGETS}/w1",
                               [{"op": "remove", "path": "/metadata/finalizers"}], JSON_PATCH)
        assert status == 200
        assert (await call(http, "GET", f"{WIDGETS}/w1"))[0] == 404

        modified = await events.next()
        assert modified["type"] == "MODIFIED"
        assert modified["object"]["metadata"]["deletionTimestamp"]
        deleted = await events.next()
        assert deleted["type"] == "DELETED" and deleted["object"]["metadata"]["name"] == "w1"

    # Without finalizers, the object is gone at once.
    await call(http, "POST", WIDGETS, widget("w2"))
    status, gone = await call(http, "DELETE", f"{WIDGETS}/w2")
    assert status == 200 and gone["metadata"]["name"] == "w2"
    assert (await call(http, "GET", f"{WIDGETS}/w2"))[0] == 404


async def test_owner_references_are_garbage_collected(
    http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    _, owner = await call(http, "POST", WIDGETS, widget("w1"))
    ref = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "name": "w1",
           "uid": owner["metadata"]["uid"], "controller": True}
    await call(http, "POST", "/api/v1/namespaces/default/configmaps",
               {"metadata": {"name": "child", "ownerReferences": [ref]}})
    await kubectl.run("delete", "widget", "w1")
    assert (await call(http, "GET", "/api/v1/namespaces/default/configmaps/child"))[0] == 404


# --- lists, selectors, watches -----------------------------------------------------------------


async def test_lists_have_kind_and_selectors_filter(
    http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    for name, labels in (("a", {"tier": "front"}), ("b", {"tier": "back"}), ("c", {})):
        await call(http, "POST", WIDGETS, widget(name, labels=labels))

    async def names(**params: str) -> list[str]:
        status, listed = await call(http, "GET", WIDGETS, **params)
        assert status == 200, listed
        assert listed["kind"] == "WidgetList" and listed["apiVersion"] == f"{GROUP}/{VERSION}"
        assert int(listed["metadata"]["resourceVersion"]) > 0
        return [item["metadata"]["name"] for item in listed["items"]]

    assert await names() == ["a", "b", "c"]
    assert await names(labelSelector="tier=front") == ["a"]
    assert await names(labelSelector="tier==front") == ["a"]
    assert await names(labelSelector="tier!=front") == ["b", "c"]
    assert await names(labelSelector="tier") == ["a", "b"]
    assert await names(labelSelector="!tier") == ["c"]
    assert await names(labelSelector="tier in (front,back)") == ["a", "b"]
    assert await names(labelSelector="tier notin (front)") == ["b", "c"]
    assert await names(fieldSelector="metadata.name=b") == ["b"]
    assert await names(fieldSelector="metadata.name!=b,metadata.namespace=default") == ["a", "c"]
    all_namespaces = await call(http, "GET", f"/apis/{GROUP}/{VERSION}/widgets",
                                fieldSelector="metadata.namespace=default")
    assert len(all_namespaces[1]["items"]) == 3

    status, bad = await call(http, "GET", WIDGETS, fieldSelector="spec.size=small")
    assert status == 400 and bad["message"] == "field label not supported: spec.size"

    _, page = await call(http, "GET", WIDGETS, limit="2")
    assert [i["metadata"]["name"] for i in page["items"]] == ["a", "b"]
    assert page["metadata"]["remainingItemCount"] == 1
    assert await names(limit="2", **{"continue": page["metadata"]["continue"]}) == ["c"]

    printed = await kubectl.run("get", "widgets", "-l", "tier=back", "-o", "name")
    assert printed.stdout.split() == ["widget.test.conveyor.dev/b"]


async def test_watch_semantics(http: aiohttp.ClientSession, kubectl: Kubectl) -> None:
    await install_crd(kubectl)
    _, a = await call(http, "POST", WIDGETS, widget("a", labels={"tier": "front"}))
    _, b = await call(http, "POST", WIDGETS, widget("b"))

    # No resourceVersion: the current objects come first as ADDED.
    async with http.get(WIDGETS, params={"watch": "1", "labelSelector": "tier=front"}) as r:
        events = Watch(r)
        first = await events.next()
        assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "a"
        # Starting to match is ADDED, ceasing to match is DELETED, as with the watch cache.
        await call(http, "PATCH", f"{WIDGETS}/b", {"metadata": {"labels": {"tier": "front"}}},
                   MERGE)
        joined = await events.next()
        assert (joined["type"], joined["object"]["metadata"]["name"]) == ("ADDED", "b")
        await call(http, "PATCH", f"{WIDGETS}/a", {"metadata": {"labels": None}}, MERGE)
        left = await events.next()
        assert (left["type"], left["object"]["metadata"]["name"]) == ("DELETED", "a")

    # A resourceVersion resumes after it; timeoutSeconds ends the stream.
    params = {"watch": "true", "resourceVersion": b["metadata"]["resourceVersion"],
              "timeoutSeconds": "1"}
    async with http.get(WIDGETS, params=params) as r:
        lines = [json.loads(line) async for line in r.content if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [
        ("MODIFIED", "b"), ("MODIFIED", "a")]
    assert a["metadata"]["name"] == "a"

    # Watch-list: the current state, then a bookmark marking its end.
    params = {"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
              "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "1"}
    async with http.get(WIDGETS, params=params) as r:
        lines = [json.loads(line) async for line in r.content if line.strip()]
    assert [e["type"] for e in lines[:3]] == ["ADDED", "ADDED", "BOOKMARK"]
    assert lines[2]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}

    # An unknown or ancient revision: 410 Expired as an ERROR event.
    async with http.get(WIDGETS, params={"watch": "true", "resourceVersion": "1"}) as r:
        expired = json.loads(await r.content.readline())
    assert expired["type"] == "ERROR" and expired["object"]["code"] == 410


async def test_watch_bookmarks(tmp_path: Path) -> None:
    async with SandboxApiServer(bookmark_interval=0.1) as server, aiohttp.ClientSession(
        base_url=server.url
    ) as http:
        _, listed = await call(http, "GET", "/api/v1/namespaces/default/configmaps")
        params = {"watch": "true", "allowWatchBookmarks": "true", "timeoutSeconds": "5",
                  "resourceVersion": listed["metadata"]["resourceVersion"]}
        async with http.get("/api/v1/namespaces/default/configmaps", params=params) as r:
            bookmark = await Watch(r).next()
        assert bookmark["type"] == "BOOKMARK"
        assert bookmark["object"]["kind"] == "ConfigMap"
        assert bookmark["object"]["metadata"]["resourceVersion"] == (
            listed["metadata"]["resourceVersion"])


async def test_kubectl_get_watch_prints_changes(
    apiserver: SandboxApiServer, http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w1"))
    async with kubectl.start("get", "widgets", "--watch") as watching:
        assert (await watching.read_until("NAME")).split() == ["NAME", "SIZE", "READY", "COUNT",
                                                               "AGE"]
        await watching.read_until("w1")
        await seen_request(apiserver, verb="watch", resource="widgets", query={"watch": "true"})
        await call(http, "PATCH", f"{WIDGETS}/w1/status",
                   {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, MERGE)
        row = await watching.read_until("True")
        assert row.split()[:4] == ["w1", "small", "True", "3"]


async def test_kubectl_wait_returns_when_condition_is_set(
    apiserver: SandboxApiServer, http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w1"))
    async with kubectl.start("wait", "--for=condition=Ready", "--timeout=30s",
                             "widgets/w1") as waiting:
        # kubectl wait lists and then watches with a metadata.name field selector.
        await seen_request(apiserver, verb="watch", resource="widgets", name="w1",
                           query={"fieldSelector": "metadata.name=w1"})
        await call(http, "PATCH", f"{WIDGETS}/w1/status",
                   {"status": {"conditions": [{"type": "Ready", "status": "True"}]}}, MERGE)
        assert await waiting.finish() == 0
        assert any("condition met" in line for line in waiting.lines), waiting.lines


async def test_kubectl_describe_shows_posted_events(
    http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    _, owner = await call(http, "POST", WIDGETS, widget("w1"))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    event = {
        "metadata": {"generateName": "w1-", "namespace": "default"},
        "type": "Normal", "reason": "Assembled", "message": "widget assembled",
        "source": {"component": "conveyor-test"}, "reportingComponent": "conveyor-test",
        "firstTimestamp": now, "lastTimestamp": now,
        "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "name": "w1",
                           "namespace": "default", "uid": owner["metadata"]["uid"]},
    }
    status, posted = await call(http, "POST", "/api/v1/namespaces/default/events", event)
    assert status == 201 and posted["kind"] == "Event" and posted["apiVersion"] == "v1"

    described = await kubectl.run("describe", "widget", "w1")
    events_section = described.stdout.split("Events:")[1]
    assert "Assembled" in events_section and "widget assembled" in events_section
    assert "conveyor-test" in events_section

    selected = await kubectl.run("get", "events", "--field-selector",
                                 "involvedObject.name=w1,involvedObject.kind=Widget")
    assert "widget/w1" in selected.stdout and "Assembled" in selected.stdout
    none = await kubectl.run("get", "events", "--field-selector", "involvedObject.name=w2")
    assert "No resources found" in none.output

    _, converted = await call(http, "GET", "/apis/events.k8s.io/v1/namespaces/default/events")
    assert converted["kind"] == "EventList"
    assert converted["items"][0]["regarding"]["name"] == "w1"
    assert converted["items"][0]["note"] == "widget assembled"


async def test_kubectl_scale_and_apply_of_builtins(
    http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "workers", "labels": {"app": "workers"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "workers"}},
                 "template": {"metadata": {"labels": {"app": "workers"}},
                              "spec": {"containers": [{"name": "w", "image": "conveyor:1"}]}}},
    }
    await kubectl.run("apply", "-f", "-", stdin=json.dumps(deployment))
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = "conveyor:2"
    assert "configured" in (await kubectl.run("apply", "-f", "-",
                                              stdin=json.dumps(deployment))).stdout
    await kubectl.run("scale", "deployment", "workers", "--replicas=3")
    _, scale = await call(http, "GET", "/apis/apps/v1/namespaces/default/deployments/workers/"
                          "scale")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3
    assert scale["status"]["selector"] == "app=workers"
    _, stored = await call(http, "GET", "/apis/apps/v1/namespaces/default/deployments/workers")
    assert stored["spec"]["replicas"] == 3
    assert stored["spec"]["template"]["spec"]["containers"] == [{"name": "w",
                                                                 "image": "conveyor:2"}]
    await call(http, "PATCH", "/apis/apps/v1/namespaces/default/deployments/workers/scale",
               {"spec": {"replicas": 0}}, MERGE)
    _, stored = await call(http, "GET", "/apis/apps/v1/namespaces/default/deployments/workers")
    assert stored["spec"]["replicas"] == 0 and stored["metadata"]["generation"] == 4
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "leader"}, "spec": {"holderIdentity": "me"}}
    await kubectl.run("apply", "-f", "-", stdin=json.dumps(lease))
    assert "me" in (await kubectl.run("get", "leases")).stdout


async def test_deleting_a_crd_deletes_its_instances(
    apiserver: SandboxApiServer, http: aiohttp.ClientSession, kubectl: Kubectl
) -> None:
    await install_crd(kubectl)
    await call(http, "POST", WIDGETS, widget("w1", finalizers=["test.conveyor.dev/hold"]))
    await call(http, "POST", WIDGETS, widget("w2"))
    crd_path = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.test.conveyor.dev"
    status, terminating = await call(http, "DELETE", crd_path)
    assert status == 202 and terminating["metadata"]["deletionTimestamp"]
    assert {c["type"] for c in terminating["status"]["conditions"]} >= {"Terminating"}
    assert [w["metadata"]["name"] for w in apiserver.objects(GROUP, VERSION, PLURAL)] == ["w1"]
    assert (await call(http, "POST", WIDGETS, widget("w3")))[0] == 405  # CRD terminating
    await call(http, "PATCH", f"{WIDGETS}/w1", {"metadata": {"finalizers": None}}, MERGE)
    assert (await call(http, "GET", crd_path))[0] == 404
    assert (await call(http, "GET", f"/apis/{GROUP}/{VERSION}"))[0] == 404
    assert GROUP not in {g["name"] for g in (await call(http, "GET", "/apis"))[1]["groups"]}


async def test_a_stalled_resource_is_never_answered_until_the_stall_is_lifted(
    apiserver: SandboxApiServer, http: aiohttp.ClientSession
) -> None:
    # A black-holed connection: the request hangs; lifting the stall lets it through.
    stall = apiserver.stall("list", "", "v1", "configmaps")
    pending = asyncio.ensure_future(call(http, "GET", "/api/v1/namespaces/default/configmaps"))
    done, _ = await asyncio.wait({pending}, timeout=0.5)
    assert not done
    status, _ = await call(http, "GET", "/api/v1/namespaces/default/secrets")
    assert status == 200  # other resources are served
    apiserver.unreact(stall)
    status, body = await asyncio.wait_for(pending, 5)
    assert (status, body["kind"]) == (200, "ConfigMapList")


async def test_injected_failures_answer_first_and_every_version_is_kept(
    apiserver: SandboxApiServer, http: aiohttp.ClientSession
) -> None:
    # A reaction intercepts matching requests before the emulated API: failure injection.
    reaction = apiserver.react("patch", "", "v1", "configmaps", status=503)
    await call(http, "POST", "/api/v1/namespaces/default/configmaps",
               {"metadata": {"name": "cm"}, "data": {"a": "1"}})
    async with http.patch("/api/v1/namespaces/default/configmaps/cm", json={"data": {"a": "2"}},
                          headers=MERGE) as response:
        assert response.status == 503
        answer = await response.json()
    assert (answer["kind"], answer["reason"], answer["code"]) == ("Status", "ServiceUnavailable",
                                                                  503)
    assert [r.status for r in apiserver.requests if r.verb == "patch"] == [503]
    await call(http, "PUT", "/api/v1/namespaces/default/configmaps/cm",
               {"metadata": {"name": "cm"}, "data": {"a": "3"}})
    # Every stored version is kept; the refused patch stored none.
    history = apiserver.history("", "configmaps", "cm", "default")
    assert [version["data"]["a"] for version in history] == ["1", "3"]
    # Once removed, the reaction no longer answers: the emulated API serves the patch.
    apiserver.unreact(reaction)
    status, _ = await call(http, "PATCH", "/api/v1/namespaces/default/configmaps/cm",
                           {"data": {"a": "4"}}, MERGE)
    assert status == 200
    assert [v["data"]["a"] for v in apiserver.history("", "configmaps", "cm", "default")] == [
        "1", "3", "4"]


async def test_openapi_documents(http: aiohttp.ClientSession, kubectl: Kubectl) -> None:
    await install_crd(kubectl)
    _, root = await call(http, "GET", "/openapi/v3")
    url = root["paths"][f"apis/{GROUP}/{VERSION}"]["serverRelativeURL"]
    _, document = await call(http, "GET", url)
    patch = document["paths"][f"/apis/{GROUP}/{VERSION}/namespaces/{{namespace}}/widgets/{{name}}"
                              ]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": GROUP, "version": VERSION,
                                                         "kind": "Widget"}
    assert "fieldValidation" in {p["name"] for p in patch["parameters"]}
    explained = await kubectl.run("explain", "widgets.spec")
    assert "size" in explained.stdout and "count" in explained.stdout


# --- kopf end to end -------------------------------------------------------------------------

HANDLERS = textwrap.dedent("""\
    import kopf

    @kopf.on.startup()
    def configure(settings: kopf.OperatorSettings, **_):
        settings.posting.level = 20  # logging.INFO: handler results become events
        settings.watching.server_timeout = 60

    @kopf.on.create("test.conveyor.dev", "v1", "widgets")
    def created(spec, name, body, **_):
        with open({created!r}, "a") as f:
            f.write(name + "\\n")
        kopf.info(body, reason="Greeted", message=f"hello {{name}}")
        return {{"size": spec["size"]}}

    @kopf.on.delete("test.conveyor.dev", "v1", "widgets")
    def deleted(name, **_):
        with open({deleted!r}, "a") as f:
            f.write(name + "\\n")
    """)


@pytest.mark.parametrize("scope", ["--all-namespaces", "--namespace=default"])
async def test_kopf_operator_end_to_end(
    apiserver: SandboxApiServer, http: aiohttp.ClientSession, kubectl: Kubectl,
    kubeconfig: Path, tmp_path: Path, scope: str,
) -> None:
    await install_crd(kubectl)
    created_log, deleted_log = tmp_path / "created.log", tmp_path / "deleted.log"
    module = tmp_path / "handlers.py"
    module.write_text(HANDLERS.format(created=str(created_log), deleted=str(deleted_log)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env["KUBECONFIG"] = str(kubeconfig)
    operator = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "kopf", "run", "--standalone", scope, "--verbose",
        str(module), env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    try:
        # Objects created before kopf watches would also be handled, but waiting for the watch
        # makes the test about the watch path (cluster-wide or namespaced, after a list).
        watched = "" if scope == "--all-namespaces" else "default"
        await seen_request(apiserver, verb="watch", resource="widgets", namespace=watched)
        await kubectl.run("apply", "-f", "-", stdin=widget_yaml("w1"))

        async def handled() -> dict[str, Any]:
            return (await call(http, "GET", f"{WIDGETS}/w1"))[1]

        body = await eventually(handled, until=lambda b: "created" in b.get("status", {}),
                                what="kopf to write the create handler's result")
        assert body["status"]["created"] == {"size": "small"}
        assert body["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]

        async def greeted() -> list[str]:
            _, listed = await call(http, "GET", "/api/v1/namespaces/default/events",
                                   fieldSelector="involvedObject.name=w1")
            return [e["reason"] for e in listed["items"]]

        await eventually(greeted, until=lambda reasons: "Greeted" in reasons,
                         what="kopf's event")

        deleting = await kubectl.run("delete", "widget", "w1", "--timeout=30s")
        assert 'widget.test.conveyor.dev "w1" deleted' in deleting.stdout
        assert apiserver.objects(GROUP, VERSION, PLURAL) == []
        assert deleted_log.read_text().split() == ["w1"]
        assert created_log.read_text().split() == ["w1"]  # once, despite kopf's own patches
        finalizer_patches = [r for r in apiserver.requests
                             if r.verb == "patch" and r.resource == "widgets" and not r.subresource
                             and r.status == 200]
        assert finalizer_patches, "kopf never patched the widget"
    finally:
        operator.terminate()
        output, _ = await asyncio.wait_for(operator.communicate(), 30)
    log = output.decode()
    assert "Handler 'created' succeeded" in log, log
    assert "Handler 'deleted' succeeded" in log, log
    assert "Traceback" not in log, log
