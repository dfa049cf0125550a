"""Kubernetes protobuf request bodies, for the few kinds kubectl's typed clients send that way.

kubectl's typed clients (``kubectl create namespace|configmap|secret|serviceaccount``,
``kubectl auth can-i``) send
``application/vnd.kubernetes.protobuf`` bodies, and client-go v1.32 does not fall back to JSON on
415 for protobuf. The encoding is the ``k8s\\x00`` magic followed by a ``runtime.Unknown``
envelope (k8s.io/apimachinery/pkg/runtime/generated.proto) whose ``raw`` field holds the object
in its generated.proto form. This module decodes those bodies into the JSON form for the kinds
described in :data:`_SCHEMAS` (field numbers from k8s.io/api/core/v1/generated.proto and
apimachinery's meta/v1). Anything else, including an unknown field in a known kind, is refused
with 415 rather than silently losing data; send JSON (``kubectl apply``/``create -f``) instead.
"""

from __future__ import annotations

import base64
import datetime
from typing import Any

from . import errors

MAGIC = b"k8s\x00"
PROTOBUF = "application/vnd.kubernetes.protobuf"

# message -> field number -> (JSON name, type, repeated). Types: scalar names, "map:string",
# "map:bytes" (map<string,string|bytes>), or another message's name.
_Field = tuple[str, str, bool]
_SCHEMAS: dict[str, dict[int, _Field]] = {
    "Unknown": {1: ("typeMeta", "TypeMeta", False), 2: ("raw", "rawbytes", False),
                3: ("contentEncoding", "string", False), 4: ("contentType", "string", False)},
    "TypeMeta": {1: ("apiVersion", "string", False), 2: ("kind", "string", False)},
    "ObjectMeta": {
        1: ("name", "string", False), 2: ("generateName", "string", False),
        3: ("namespace", "string", False), 4: ("selfLink", "string", False),
        5: ("uid", "string", False), 6: ("resourceVersion", "string", False),
        7: ("generation", "int64", False), 8: ("creationTimestamp", "Time", False),
        9: ("deletionTimestamp", "Time", False),
        10: ("deletionGracePeriodSeconds", "int64", False), 11: ("labels", "map:string", False),
        12: ("annotations", "map:string", False),
        13: ("ownerReferences", "OwnerReference", True), 14: ("finalizers", "string", True),
    },
    "OwnerReference": {
        1: ("kind", "string", False), 3: ("name", "string", False), 4: ("uid", "string", False),
        5: ("apiVersion", "string", False), 6: ("controller", "bool", False),
        7: ("blockOwnerDeletion", "bool", False),
    },
    "LocalObjectReference": {1: ("name", "string", False)},
    "ObjectReference": {
        1: ("kind", "string", False), 2: ("namespace", "string", False),
        3: ("name", "string", False), 4: ("uid", "string", False),
        5: ("apiVersion", "string", False), 6: ("resourceVersion", "string", False),
        7: ("fieldPath", "string", False),
    },
    "Namespace": {1: ("metadata", "ObjectMeta", False), 2: ("spec", "NamespaceSpec", False),
                  3: ("status", "NamespaceStatus", False)},
    "NamespaceSpec": {1: ("finalizers", "string", True)},
    "NamespaceStatus": {1: ("phase", "string", False)},
    "ConfigMap": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:string", False),
                  3: ("binaryData", "map:bytes", False), 4: ("immutable", "bool", False)},
    "Secret": {1: ("metadata", "ObjectMeta", False), 2: ("data", "map:bytes", False),
               3: ("type", "string", False), 4: ("stringData", "map:string", False),
               5: ("immutable", "bool", False)},
    "ServiceAccount": {1: ("metadata", "ObjectMeta", False),
                       2: ("secrets", "ObjectReference", True),
                       3: ("imagePullSecrets", "LocalObjectReference", True),
                       4: ("automountServiceAccountToken", "bool", False)},
    # authorization/v1 (kubectl auth can-i)
    "SelfSubjectAccessReview": {1: ("metadata", "ObjectMeta", False),
                                2: ("spec", "SelfSubjectAccessReviewSpec", False),
                                3: ("status", "SubjectAccessReviewStatus", False)},
    "SubjectAccessReviewStatus": {1: ("allowed", "bool", False), 2: ("reason", "string", False),
                                  3: ("evaluationError", "string", False),
                                  4: ("denied", "bool", False)},
    "SelfSubjectAccessReviewSpec": {1: ("resourceAttributes", "ResourceAttributes", False),
                                    2: ("nonResourceAttributes", "NonResourceAttributes", False)},
    "ResourceAttributes": {
        1: ("namespace", "string", False), 2: ("verb", "string", False),
        3: ("group", "string", False), 4: ("version", "string", False),
        5: ("resource", "string", False), 6: ("subresource", "string", False),
        7: ("name", "string", False),
    },
    "NonResourceAttributes": {1: ("path", "string", False), 2: ("verb", "string", False)},
}
_KINDS = {("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "ServiceAccount"),
          ("authorization.k8s.io/v1", "SelfSubjectAccessReview")}


def _unsupported(why: str) -> errors.ApiError:
    return errors.ApiError(
        415, "UnsupportedMediaType",
        f"the sandbox API server cannot decode this protobuf body ({why}); send JSON instead "
        "(e.g. kubectl apply -f / kubectl create -f)", {},
    )


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded object as its JSON form; 415 when it cannot be decoded faithfully."""
    if not body.startswith(MAGIC):
        raise _unsupported("no k8s protobuf magic")
    envelope = _message(body[len(MAGIC):], "Unknown")
    type_meta = envelope.get("typeMeta") or {}
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    if (api_version, kind) not in _KINDS:
        raise _unsupported(f"kind {api_version}/{kind} is not supported")
    if envelope.get("contentEncoding"):
        raise _unsupported(f"content encoding {envelope['contentEncoding']}")
    obj = _message(envelope.get("raw", b""), kind)
    return {"apiVersion": api_version, "kind": kind, **obj}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _unsupported("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) of each field on the wire."""
    fields = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 1:
            value, pos = int.from_bytes(data[pos:pos + 8], "little"), pos + 8
        elif wire == 5:
            value, pos = int.from_bytes(data[pos:pos + 4], "little"), pos + 4
        else:
            raise _unsupported(f"wire type {wire}")
        fields.append((number, wire, value))
    return fields


def _message(data: bytes, name: str) -> dict[str, Any]:
    schema = _SCHEMAS[name]
    result: dict[str, Any] = {}
    for number, _wire, raw in _fields(data):
        if number not in schema:
            raise _unsupported(f"{name} field {number} is not supported")
        json_name, kind, repeated = schema[number]
        if kind.startswith("map:"):
            entry = {n: v for n, _, v in _fields(raw)}
            key = entry.get(1, b"").decode()
            value = entry.get(2, b"")
            result.setdefault(json_name, {})[key] = (
                base64.b64encode(value).decode() if kind == "map:bytes" else value.decode())
            continue
        value = _scalar(raw, kind)
        if value is None or (not repeated and value in ("", 0) and not isinstance(value, bool)):
            continue  # gogo-proto writes empty optional fields; JSON omits them (omitempty)
        if repeated:
            result.setdefault(json_name, []).append(value)
        else:
            result[json_name] = value
    return result


def _scalar(raw: Any, kind: str) -> Any:
    match kind:
        case "string":
            return raw.decode()
        case "rawbytes":
            return raw
        case "bytes":
            return base64.b64encode(raw).decode()
        case "bool":
            return bool(raw)
        case "int64" | "int32":
            return raw - (1 << 64) if raw >= 1 << 63 else raw
        case "Time":  # metav1.Time: {seconds=1, nanos=2}, serialized as RFC 3339 seconds
            seconds = {number: value for number, _, value in _fields(raw)}.get(1, 0)
            if not seconds:
                return None
            when = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
            return when.strftime("%Y-%m-%dT%H:%M:%SZ")
    return _message(raw, kind)
