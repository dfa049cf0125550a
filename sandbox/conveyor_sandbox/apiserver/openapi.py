"""OpenAPI documents, as much as kubectl needs to apply with validation on.

kubectl v1.32 ``apply``/``create`` (default ``--validate=strict``) first asks OpenAPI v3 whether
the server supports the ``fieldValidation`` query parameter for the object's kind
(k8s.io/cli-runtime/pkg/resource/query_param_verifier_v3.go): it reads ``/openapi/v3``, then
the group-version document, and looks for a PATCH operation tagged with the kind's
``x-kubernetes-group-version-kind`` that declares a ``fieldValidation`` query parameter. If so,
it sends ``fieldValidation=Strict`` and leaves validation to the server (which answers unknown
fields with 400, see :mod:`.rest`). For Namespaces it always validates client-side with the
OpenAPI v2 schema (``/openapi/v2``, protobuf): an empty document is valid protobuf and means
"no schema known", which kubectl accepts.

The PATCH operations list no ``application/strategic-merge-patch+json`` body: kubectl then
computes a JSON merge patch for custom resources and a strategic merge patch from its compiled-in
types for built-ins, exactly as with a real server's CRDs. Custom resources' schemas are
included in ``components.schemas`` so ``kubectl explain`` works.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from . import patching
from .discovery import KUBERNETES_VERSION
from .registry import Registry, ResourceType

OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
_OBJECT_META_REF = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_OBJECT_META = {
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "type": "object",
    "properties": {
        key: {"type": kind} for key, kind in {
            "name": "string", "generateName": "string", "namespace": "string", "uid": "string",
            "resourceVersion": "string", "generation": "integer", "creationTimestamp": "string",
            "deletionTimestamp": "string", "deletionGracePeriodSeconds": "integer",
            "labels": "object", "annotations": "object", "finalizers": "array",
            "ownerReferences": "array", "managedFields": "array",
        }.items()
    },
}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _schema_name(group: str, version: str, kind: str) -> str:
    reversed_group = ".".join(reversed(group.split("."))) if group else "io.k8s.api.core"
    return f"{reversed_group}.{version}.{kind}"


def v3_document(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI v3 document of one group-version, or ``None`` if it is not served."""
    types = [t for t in registry.in_group_version(group, version) if not t.virtual]
    if not registry.in_group_version(group, version):
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": _OBJECT_META}
    for rtype in types:
        gvk = {"group": group, "version": version, "kind": rtype.kind}
        name = _schema_name(group, version, rtype.kind)
        schemas[name] = _kind_schema(rtype, version, gvk)
        schemas[f"{name}List"] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [gvk | {"kind": rtype.list_kind}],
            "properties": {"items": {"type": "array", "items": {"$ref": f"#/components/schemas/"
                                                                          f"{name}"}}},
        }
        _add_paths(paths, rtype, group, version, gvk, name)
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _kind_schema(rtype: ResourceType, version: str, gvk: dict[str, str]) -> dict[str, Any]:
    info = rtype.versions.get(version)
    schema: dict[str, Any] = dict(info.schema) if info and info.schema else {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
    }
    properties = dict(schema.get("properties") or {})
    properties["metadata"] = {"$ref": _OBJECT_META_REF}
    properties.setdefault("apiVersion", {"type": "string"})
    properties.setdefault("kind", {"type": "string"})
    schema["properties"] = properties
    schema["x-kubernetes-group-version-kind"] = [gvk]
    return schema


def _operation(action: str, gvk: dict[str, str], ref: str, *, body: bool = False,
               patch: bool = False) -> dict[str, Any]:
    parameters = [{"name": "dryRun", "in": "query", "schema": {"type": "string"}}]
    if action in ("post", "put", "patch"):
        parameters += [
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
        ]
    op: dict[str, Any] = {
        "operationId": f"{action}{gvk['kind']}",
        "parameters": parameters,
        "responses": {"200": {"description": "OK", "content": {
            "application/json": {"schema": {"$ref": ref}}}}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if patch:
        content = {t: {"schema": {"type": "object"}} for t in patching.PATCH_TYPES
                   if t != patching.STRATEGIC_MERGE_PATCH}
        op["requestBody"] = {"content": content, "required": True}
    elif body:
        op["requestBody"] = {"content": {"application/json": {"schema": {"$ref": ref}}},
                             "required": True}
    return op


def _add_paths(paths: dict[str, Any], rtype: ResourceType, group: str, version: str,
               gvk: dict[str, str], schema_name: str) -> None:
    base = f"/{_gv_path(group, version)}"
    scoped = f"{base}/namespaces/{{namespace}}/{rtype.plural}" if rtype.namespaced else (
        f"{base}/{rtype.plural}")
    ref = f"#/components/schemas/{schema_name}"
    paths[scoped] = {
        "get": _operation("list", gvk, ref + "List"),
        "post": _operation("post", gvk, ref, body=True),
        "delete": _operation("deletecollection", gvk, ref),
    }
    item = {
        "get": _operation("get", gvk, ref),
        "put": _operation("put", gvk, ref, body=True),
        "patch": _operation("patch", gvk, ref, patch=True),
        "delete": _operation("delete", gvk, ref),
    }
    paths[f"{scoped}/{{name}}"] = item
    for sub in rtype.subresources:
        if sub == "status":
            paths[f"{scoped}/{{name}}/status"] = {
                "get": _operation("get", gvk, ref),
                "put": _operation("put", gvk, ref, body=True),
                "patch": _operation("patch", gvk, ref, patch=True),
            }
    if rtype.namespaced:
        paths[f"{base}/{rtype.plural}"] = {"get": _operation("list", gvk, ref + "List")}


def _hash(document: dict[str, Any]) -> str:
    return hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest().upper()[:32]


def v3_root(registry: Registry) -> dict[str, Any]:
    """``/openapi/v3``: every served group-version with a content-hashed URL (clients cache)."""
    cached = registry.cache.get("openapi-v3-root")
    if cached is not None and cached[0] == registry.revision:
        return cached[1]
    paths: dict[str, Any] = {}
    for group, versions in registry.groups().items():
        for version in versions:
            document = v3_document(registry, group, version)
            if document is not None:
                gv = _gv_path(group, version)
                paths[gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={_hash(document)}"}
    registry.cache["openapi-v3-root"] = (registry.revision, {"paths": paths})
    return {"paths": paths}


def v2_document_json() -> dict[str, Any]:
    """``/openapi/v2`` as JSON: a valid, empty Swagger 2.0 document."""
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION["gitVersion"]},
        "paths": {},
        "definitions": {},
    }


def v2_document_protobuf() -> bytes:
    """``/openapi/v2`` as gnostic protobuf: an empty ``openapi_v2.Document`` (zero bytes)."""
    return b""
