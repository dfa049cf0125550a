"""Create: checking and converting request bodies, defaulting and validating new objects
(custom resources against their CRD), namespace lifecycle, and the seeded namespaces."""

from __future__ import annotations

import copy
from typing import Any

from .. import crds, errors, events, stamping, validation
from ..registry import ResourceType
from .base import ApiBase
from .kinds import CRDS, NAMESPACES
from .objectmeta import _metadata_errors
from .request import ApiRequest, _Result


class CreateMixin(ApiBase):
    """Create, the checks every incoming object goes through, and seeding."""

    def _create(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
                body: Any) -> _Result:
        obj = self._incoming(rtype, version, body)
        meta = obj["metadata"]
        if rtype.virtual:
            return _Result(_review_answer(obj), status=201)
        if rtype.namespaced:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")
            self._check_namespace_open(namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = stamping.generate_name(meta["generateName"])
        name = meta.get("name", "")
        problems = _metadata_errors(rtype, obj)
        if problems:
            raise errors.invalid(rtype.group, rtype.kind, name, problems)
        if self.store.get(rtype.storage_key, namespace if rtype.namespaced else "", name):
            raise errors.already_exists(rtype.group, rtype.plural, name)
        warnings: list[str] = []
        obj = self._prepare_create(req, rtype, version, obj, warnings)
        stamped = stamping.stamp_create(
            obj, namespace=namespace if rtype.namespaced else "",
            rv=self.store.rv if req.dry_run else self.store.next_rv(),
        )
        if rtype.storage_key == CRDS:
            stamped = crds.with_status(stamped, None)
        if req.dry_run:
            return _Result(stamped, status=201, warnings=warnings)
        self.store.put(rtype.storage_key, stamped, None)
        self._after_write(rtype, stamped)
        return _Result(stamped, status=201, warnings=warnings)

    def _prepare_create(self, req: ApiRequest, rtype: ResourceType, version: str,
                        obj: dict[str, Any], warnings: list[str]) -> dict[str, Any]:
        if rtype.has_status and rtype.storage_key not in (NAMESPACES, CRDS):
            obj.pop("status", None)  # PrepareForCreate: create cannot set status
        _builtin_defaults(rtype, obj)
        if rtype.storage_key == NAMESPACES:
            obj["spec"] = {"finalizers": ["kubernetes"]} | (obj.get("spec") or {})
            obj["status"] = {"phase": "Active"}
            labels = obj["metadata"].setdefault("labels", {})
            labels["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif rtype.storage_key == CRDS:
            obj = crds.apply_defaults(obj)
            problems = crds.validate(obj, None)
            if problems:
                raise errors.invalid(rtype.group, rtype.kind, obj["metadata"]["name"], problems)
            finalizers = obj["metadata"].setdefault("finalizers", [])
            if crds.CLEANUP_FINALIZER not in finalizers:
                finalizers.append(crds.CLEANUP_FINALIZER)
        elif rtype.is_custom:
            crd = self.store.get(CRDS, "", rtype.crd_name)
            if crd is not None and crd["metadata"].get("deletionTimestamp"):
                raise errors.ApiError(405, "MethodNotAllowed", "create not allowed while custom "
                                      "resource definition is terminating", {})
            obj = self._validate_custom(req, rtype, version, obj, None, warnings)
        return obj

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACES, "", namespace)
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.forbidden("", "namespaces", namespace,
                                   f"unable to create new content in namespace {namespace} "
                                   "because it is being terminated")

    def _incoming(self, rtype: ResourceType, version: str, body: Any) -> dict[str, Any]:
        """A request body checked against the endpoint and converted to the stored form."""
        if not isinstance(body, dict):
            raise errors.bad_request("the object provided is unrecognized (must be a JSON "
                                     "object)")
        obj = copy.deepcopy(body)
        expected = rtype.api_version(version)
        if obj.get("apiVersion") and obj["apiVersion"] != expected:
            raise errors.bad_request(f"the API version in the data ({obj['apiVersion']}) does not "
                                     f"match the expected API version ({expected})")
        if obj.get("kind") and obj["kind"] != rtype.kind:
            raise errors.bad_request(f"the kind in the data ({obj['kind']}) does not match the "
                                     f"expected kind ({rtype.kind})")
        obj["apiVersion"] = expected
        obj["kind"] = rtype.kind
        if not isinstance(obj.get("metadata"), dict):
            obj["metadata"] = {}
        if events.is_events_api(rtype.group, rtype.plural):
            obj = events.to_core(obj)
        elif version != rtype.storage_version:
            obj["apiVersion"] = rtype.api_version(rtype.storage_version)
        # Reorder so apiVersion/kind/metadata lead, as the server serializes objects.
        head = {k: obj[k] for k in ("apiVersion", "kind", "metadata")}
        return head | {k: v for k, v in obj.items() if k not in head}

    def _validate_custom(self, req: ApiRequest, rtype: ResourceType, version: str,
                         obj: dict[str, Any], old: dict[str, Any] | None,
                         warnings: list[str]) -> dict[str, Any]:
        info = rtype.versions.get(version)
        outcome = validation.process(obj, info.schema if info else None, old)
        unknown = outcome.unknown_fields + [
            f"metadata.{k}" for k in stamping.unknown_metadata_fields(obj.get("metadata") or {})
        ]
        directive = req.query.get("fieldValidation", "Warn")
        if unknown and directive == "Strict":
            fields = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise errors.bad_request(f"{rtype.kind} in version \"{version}\" cannot be handled as "
                                     f"a {rtype.kind}: strict decoding error: {fields}")
        if unknown and directive != "Ignore":
            warnings.extend(f'unknown field "{f}"' for f in unknown)
        if outcome.errors:
            raise errors.invalid(rtype.group, rtype.kind, obj["metadata"].get("name", ""),
                                 outcome.errors)
        if info is not None and info.deprecated:
            warnings.append(info.deprecation_warning or f"{rtype.api_version(version)} "
                            f"{rtype.kind} is deprecated")
        return outcome.obj

    def _after_write(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        if rtype.storage_key == CRDS:
            self.registry.add(crds.resource_type(obj))

    def seed(self) -> None:
        """The objects every cluster starts with: the system namespaces."""
        rtype = self.registry.get(*NAMESPACES)
        assert rtype is not None
        for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
            obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            obj = self._prepare_create_namespace(obj)
            stamped = stamping.stamp_create(obj, namespace="", rv=self.store.next_rv())
            self.store.put(NAMESPACES, stamped, None)

    @staticmethod
    def _prepare_create_namespace(obj: dict[str, Any]) -> dict[str, Any]:
        name = obj["metadata"]["name"]
        obj["metadata"]["labels"] = {"kubernetes.io/metadata.name": name}
        obj["spec"] = {"finalizers": ["kubernetes"]}
        obj["status"] = {"phase": "Active"}
        return obj


def _builtin_defaults(rtype: ResourceType, obj: dict[str, Any]) -> None:
    """The few built-in defaults clients notice (pkg/apis/*/v1/defaults.go)."""
    if rtype.storage_key == ("", "secrets"):
        obj["type"] = obj.get("type") or "Opaque"
    elif rtype.scale is not None and not rtype.is_custom:
        spec = obj.setdefault("spec", {})
        if spec.get("replicas") is None:
            spec["replicas"] = 1


def _review_answer(obj: dict[str, Any]) -> dict[str, Any]:
    """Create-only resources (access reviews, token reviews): everything is allowed."""
    answer = copy.deepcopy(obj)
    if obj.get("kind", "").endswith("AccessReview"):
        answer["status"] = {"allowed": True, "reason": "the sandbox allows everything"}
    elif obj.get("kind") == "TokenReview":
        answer["status"] = {"authenticated": True, "user": {"username": "sandbox"}}
    elif obj.get("kind") == "SelfSubjectReview":
        answer["status"] = {"userInfo": {"username": "sandbox", "groups": ["system:masters"]}}
    return answer
