"""Resource requests: get, list, watch, create, update, patch, delete, deletecollection.

The behaviours are the API server's generic registry (k8s.io/apiserver/pkg/registry/generic/
registry/store.go) with the strategies of the resources we care about:

- Create: 201 with the stamped object (:mod:`.stamping`); 409 AlreadyExists; ``generateName``;
  404 when the namespace does not exist and 403 when it is terminating (NamespaceLifecycle);
  status is dropped for resources with a status subresource.
- Update (PUT) and patch: optimistic concurrency on ``metadata.resourceVersion`` (409
  Conflict; custom resources refuse unconditional PUTs with 422); with a status subresource,
  main writes keep the old status and ``/status`` writes change nothing but status;
  ``generation`` follows :func:`.stamping.spec_changed`; a write that changes nothing is not
  stored (no new resourceVersion, no event), as etcd3's GuaranteedUpdate skips it.
- Delete: objects with finalizers get ``deletionTimestamp`` (202) and vanish once an update
  removes the last finalizer (watchers see MODIFIED, then DELETED); others vanish at once (200).
  Preconditions (uid, resourceVersion) are honoured. Dependents (``ownerReferences``) are
  garbage-collected in the background style, or orphaned with ``propagationPolicy=Orphan``.
- Custom resources are pruned, defaulted and validated against their CRD (:mod:`.validation`);
  ``fieldValidation`` Strict answers unknown fields with 400, Warn (the default) with a
  ``Warning`` header, Ignore silently.
- Namespaces start Active, go Terminating on delete while their content is deleted, and vanish
  when empty. CRDs register their resource on write and clean up their instances on delete.
- ``dryRun=All`` runs everything but the write.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp.web
import yaml

from . import (
    crds,
    errors,
    events,
    fielderrors,
    jsonpath,
    patching,
    protobuf,
    selectors,
    stamping,
    tables,
    validation,
    watch,
)
from .fielderrors import FieldError
from .registry import Registry, ResourceType
from .requestinfo import RequestInfo, parse_bool
from .store import StorageKey, Store

NAMESPACES: StorageKey = ("", "namespaces")
CRDS: StorageKey = ("apiextensions.k8s.io", "customresourcedefinitions")
_BINARY_MEDIA_TYPES = frozenset({"application/vnd.kubernetes.protobuf", "application/cbor"})
_BODY_MEDIA_TYPES = ("application/json", "application/yaml")
_SUBRESOURCES = frozenset({"status", "scale", "finalize"})
_UNDELETABLE_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS_1035_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
    "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@dataclasses.dataclass
class ApiRequest:
    """One resource request: its API meaning and HTTP details."""

    info: RequestInfo
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    raw: aiohttp.web.BaseRequest
    on_start: Callable[[int], None] = lambda status: None

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"

    def json(self) -> Any:
        """The decoded body: JSON, YAML, or protobuf for the kinds :mod:`.protobuf` knows
        (kubectl's typed clients send those); 415 for other binary encodings."""
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type == protobuf.PROTOBUF:
            return protobuf.decode(self.body)
        if content_type in _BINARY_MEDIA_TYPES:
            raise errors.unsupported_media_type(content_type, _BODY_MEDIA_TYPES)
        if not self.body.strip():
            raise errors.bad_request("the request body is empty")
        try:
            return json.loads(self.body)
        except ValueError:
            content_type = self.headers.get("Content-Type", "")
            if "yaml" in content_type:
                try:
                    return yaml.safe_load(self.body)
                except yaml.YAMLError as exc:
                    raise errors.bad_request(f"invalid YAML: {exc}") from exc
            raise errors.bad_request(
                "the object provided is unrecognized (must be of type JSON): "
                f"{self.body[:80]!r}"
            ) from None


@dataclasses.dataclass
class _Result:
    """What a write produced: the object, the HTTP status, warnings for the client."""

    obj: dict[str, Any]
    status: int = 200
    warnings: list[str] = dataclasses.field(default_factory=list)


class ResourceApi:
    """Serves resource requests against a :class:`Registry` and a :class:`Store`."""

    def __init__(self, registry: Registry, store: Store, *, bookmark_interval: float = 5.0):
        self.registry = registry
        self.store = store
        self.bookmark_interval = bookmark_interval

    # --- entry ---------------------------------------------------------------------------

    async def handle(self, req: ApiRequest) -> aiohttp.web.StreamResponse:
        info = req.info
        rtype = self.registry.lookup(info.group, info.version, info.resource)
        if rtype is None:
            raise errors.resource_not_found()
        namespace = info.namespace
        if rtype.storage_key == NAMESPACES:
            namespace = ""  # /api/v1/namespaces/{name}: the path names the object itself
        elif not rtype.namespaced and namespace:
            raise errors.resource_not_found()
        elif rtype.namespaced and info.name_from_path and not namespace:
            raise errors.resource_not_found()
        # Of the subresources, only status and scale are emulated (no pods/log, exec, ...).
        if info.subresource and (info.subresource not in rtype.subresources
                                 or info.subresource not in _SUBRESOURCES):
            raise errors.resource_not_found()
        allowed = rtype.subresource_verbs.get(info.subresource, []) if info.subresource else (
            rtype.verbs)
        name = info.name if info.name_from_path else ""
        verb = info.verb
        if verb not in allowed and not (verb == "watch" and "watch" in rtype.verbs):
            raise errors.method_not_allowed()
        version = info.version
        match verb:
            case "get":
                return self._respond_object(req, rtype, version, self._get(rtype, namespace, name))
            case "list":
                return self._list(req, rtype, version, namespace)
            case "watch":
                return await self._watch(req, rtype, version, namespace, name)
            case "create":
                if info.subresource or name:
                    raise errors.method_not_allowed()
                if rtype.namespaced and not namespace:
                    raise errors.method_not_allowed()
                result = self._create(req, rtype, version, namespace, req.json())
            case "update":
                result = self._update(req, rtype, version, namespace, name, info.subresource)
            case "patch":
                result = self._patch(req, rtype, version, namespace, name, info.subresource)
            case "delete":
                result = self._delete(req, rtype, namespace, name)
            case "deletecollection":
                return self._delete_collection(req, rtype, version, namespace)
            case _:
                raise errors.method_not_allowed()
        if info.subresource == "scale":
            body = self._scale_object(rtype, result.obj)
        else:
            body = self.present(rtype, version, result.obj)
        return json_response(body, status=result.status, warnings=result.warnings)

    # --- representation ------------------------------------------------------------------

    def present(self, rtype: ResourceType, version: str, obj: dict[str, Any]) -> dict[str, Any]:
        """A stored object as served in ``version`` (conversion strategy None: apiVersion)."""
        if events.is_events_api(rtype.group, rtype.plural):
            return events.from_core(obj)
        if obj.get("apiVersion") == rtype.api_version(version):
            return obj
        shown = dict(obj)
        shown["apiVersion"] = rtype.api_version(version)
        return shown

    def _respond_object(self, req: ApiRequest, rtype: ResourceType, version: str,
                        obj: dict[str, Any]) -> aiohttp.web.Response:
        if req.info.subresource == "scale":
            return json_response(self._scale_object(rtype, obj))
        shown = self.present(rtype, version, obj)
        table_version = tables.wants(req.headers.get("Accept"), "Table")
        if table_version:
            return json_response(tables.to_table(
                rtype, version, [shown], include_object=req.query.get("includeObject"),
                table_version=table_version,
                list_meta={"resourceVersion": shown["metadata"].get("resourceVersion", "")},
            ))
        meta_version = tables.wants(req.headers.get("Accept"), "PartialObjectMetadata")
        if meta_version:
            return json_response(tables.partial_metadata(shown, meta_version))
        return json_response(shown)

    def _field_set(self, rtype: ResourceType, version: str, obj: dict[str, Any]) -> dict[str, str]:
        meta = obj.get("metadata") or {}
        fields = {"metadata.name": meta.get("name", ""),
                  "metadata.namespace": meta.get("namespace", "")}
        for label, path in rtype.field_labels.items():
            fields[label] = selectors.field_string(selectors.get_path(obj, path))
        info = rtype.versions.get(version)
        for label in info.selectable_fields if info else []:
            fields[label] = selectors.field_string(jsonpath.first(obj, "." + label)[1])
        return fields

    def _matcher(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
                 name: str = "") -> Callable[[dict[str, Any]], bool]:
        labels = selectors.parse_label_selector(req.query.get("labelSelector"))
        fields = selectors.parse_field_selector(
            req.query.get("fieldSelector"), lambda label: rtype.supports_field(version, label)
        )

        def matches(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata") or {}
            if namespace and meta.get("namespace", "") != namespace:
                return False
            if name and meta.get("name") != name:
                return False
            return labels.matches(meta.get("labels")) and fields.matches(
                self._field_set(rtype, version, obj))

        return matches

    # --- reads ---------------------------------------------------------------------------

    def _get(self, rtype: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rtype.storage_key, namespace, name)
        if obj is None:
            raise errors.not_found(rtype.group, rtype.plural, name)
        return obj

    def _list(self, req: ApiRequest, rtype: ResourceType, version: str,
              namespace: str) -> aiohttp.web.Response:
        matches = self._matcher(req, rtype, version, namespace)
        items = [o for o in self.store.list(rtype.storage_key, namespace or None) if matches(o)]
        list_meta: dict[str, Any] = {"resourceVersion": str(self.store.rv)}
        start = _decode_continue(req.query.get("continue"))
        if start is not None:
            items = [o for o in items if _object_key(o) > start]
        limit = _int_param(req.query.get("limit"))
        if limit and len(items) > limit:
            list_meta["continue"] = _encode_continue(_object_key(items[limit - 1]))
            list_meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        shown = [self.present(rtype, version, o) for o in items]
        table_version = tables.wants(req.headers.get("Accept"), "Table")
        if table_version:
            return json_response(tables.to_table(
                rtype, version, shown, include_object=req.query.get("includeObject"),
                table_version=table_version, list_meta=list_meta,
            ))
        meta_version = tables.wants(req.headers.get("Accept"), "PartialObjectMetadataList")
        if meta_version:
            return json_response({
                "kind": "PartialObjectMetadataList",
                "apiVersion": f"meta.k8s.io/{meta_version}",
                "metadata": list_meta,
                "items": [tables.partial_metadata(o, meta_version) for o in shown],
            })
        return json_response({
            "apiVersion": rtype.api_version(version),
            "kind": rtype.list_kind,
            "metadata": list_meta,
            "items": shown,
        })

    async def _watch(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
                     name: str) -> aiohttp.web.StreamResponse:
        matches = self._matcher(req, rtype, version, namespace, name)
        table_version = tables.wants(req.headers.get("Accept"), "Table")
        include = req.query.get("includeObject")

        def render(obj: dict[str, Any]) -> dict[str, Any]:
            shown = self.present(rtype, version, obj)
            if table_version:
                return tables.to_table(
                    rtype, version, [shown], include_object=include, table_version=table_version,
                    list_meta={"resourceVersion": shown["metadata"].get("resourceVersion", "")},
                )
            return shown

        def bookmark(rv: int) -> dict[str, Any]:
            return {"kind": rtype.kind, "apiVersion": rtype.api_version(version),
                    "metadata": {"resourceVersion": str(rv)}}

        timeout = _int_param(req.query.get("timeoutSeconds"))
        watch_list = parse_bool(req.query.get("sendInitialEvents"))
        spec = watch.WatchSpec(
            storage=rtype.storage_key,
            since_rv=None if watch_list else watch.parse_since(req.query.get("resourceVersion")),
            matches=matches,
            render=render,
            initial=lambda: self.store.list(rtype.storage_key, namespace or None),
            timeout=float(timeout) if timeout else watch.DEFAULT_TIMEOUT,
            bookmarks=parse_bool(req.query.get("allowWatchBookmarks")) and not table_version,
            bookmark_object=bookmark,
            bookmark_interval=self.bookmark_interval,
            initial_events_end=watch_list,
        )
        return await watch.serve(req.raw, self.store, spec, req.on_start)

    # --- create --------------------------------------------------------------------------

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

    # --- update and patch ----------------------------------------------------------------

    def _update(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
                name: str, subresource: str) -> _Result:
        body = req.json()
        existing = self._get(rtype, namespace, name)
        if subresource == "scale":
            return self._write_scale(req, rtype, version, existing, body)
        incoming = self._incoming(rtype, version, body)
        meta = incoming["metadata"]
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the "
                                     f"name on the URL ({name})")
        if rtype.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        rv = meta.get("resourceVersion")
        if rv and rv != existing["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group, rtype.plural, name, errors.STALE)
        if not rv and rtype.is_custom:
            raise errors.invalid(rtype.group, rtype.kind, name, [FieldError(
                fielderrors.INVALID, "metadata.resourceVersion", fielderrors.GoLiteral("0x0"),
                "must be specified for an update",
            )])
        return self._commit_update(req, rtype, version, existing, incoming, subresource)

    def _patch(self, req: ApiRequest, rtype: ResourceType, version: str, namespace: str,
               name: str, subresource: str) -> _Result:
        content_type = req.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in patching.PATCH_TYPES:
            raise errors.unsupported_media_type(content_type, patching.PATCH_TYPES)
        existing = self.store.get(rtype.storage_key, namespace, name)
        if content_type == patching.APPLY_PATCH:
            applied = _load_apply(req.body)
            if existing is None:
                if subresource:
                    raise errors.not_found(rtype.group, rtype.plural, name)
                applied.setdefault("metadata", {})["name"] = name
                return self._create(req, rtype, version, namespace, applied)
        if existing is None:
            raise errors.not_found(rtype.group, rtype.plural, name)
        current = (self._scale_object(rtype, existing) if subresource == "scale"
                   else self.present(rtype, version, existing))
        match content_type:
            case patching.JSON_PATCH:
                patched = patching.json_patch(current, req.json())
            case patching.MERGE_PATCH:
                patched = patching.merge_patch(current, req.json())
            case patching.STRATEGIC_MERGE_PATCH:
                data = req.json()
                patched = (patching.merge_patch(current, data) if rtype.is_custom
                           else patching.strategic_merge_patch(current, data))
            case _:
                patched = patching.apply_patch(current, applied)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patched object is not a JSON object")
        if subresource == "scale":
            return self._write_scale(req, rtype, version, existing, patched)
        patched_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if patched_rv and patched_rv != existing["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group, rtype.plural, name, errors.STALE)
        incoming = self._incoming(rtype, version, patched)
        return self._commit_update(req, rtype, version, existing, incoming, subresource)

    def _commit_update(self, req: ApiRequest, rtype: ResourceType, version: str,
                       existing: dict[str, Any], incoming: dict[str, Any],
                       subresource: str) -> _Result:
        name = existing["metadata"]["name"]
        warnings: list[str] = []
        if subresource == "status":
            # The status strategy: everything but status comes from the stored object.
            new = copy.deepcopy(existing)
            if "status" in incoming:
                new["status"] = copy.deepcopy(incoming["status"])
            else:
                new.pop("status", None)
        else:
            new = stamping.keep_server_fields(incoming, existing)
            if rtype.has_status and rtype.storage_key != CRDS:
                if "status" in existing:
                    new["status"] = copy.deepcopy(existing["status"])
                else:
                    new.pop("status", None)
            problems = _metadata_errors(rtype, new)
            if problems:
                raise errors.invalid(rtype.group, rtype.kind, name, problems)
        if rtype.storage_key == CRDS:
            new = crds.apply_defaults(new)
            problems = crds.validate(new, existing)
            if problems:
                raise errors.invalid(rtype.group, rtype.kind, name, problems)
            new = crds.with_status(new, existing)
        elif rtype.storage_key == NAMESPACES and subresource != "status":
            new["status"] = copy.deepcopy(existing.get("status", {"phase": "Active"}))
        elif rtype.is_custom:
            validated = self._validate_custom(req, rtype, version, new, existing, warnings)
            if subresource == "status":
                new = copy.deepcopy(existing)
                if "status" in validated:
                    new["status"] = validated["status"]
                else:
                    new.pop("status", None)
            else:
                new = validated
        old_meta = existing["metadata"]
        if old_meta.get("deletionTimestamp"):
            added = [f for f in new["metadata"].get("finalizers", [])
                     if f not in old_meta.get("finalizers", [])]
            if added:
                raise errors.invalid(rtype.group, rtype.kind, name, [FieldError(
                    fielderrors.FORBIDDEN, "metadata.finalizers", detail="no new finalizers can "
                    "be added if the object is being deleted, found new finalizers "
                    "[]string{" + ", ".join(fielderrors.go_quote(f) for f in added) + "}",
                )])
        if subresource != "status" and stamping.spec_changed(
                new, existing, status_is_separate=rtype.has_status):
            new["metadata"]["generation"] = int(old_meta.get("generation", 0)) + 1
        if new == existing:
            return _Result(existing, warnings=warnings)  # no-op: nothing stored, no event
        if req.dry_run:
            return _Result(new, warnings=warnings)
        new["metadata"]["resourceVersion"] = str(self.store.next_rv())
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            self._remove(rtype.storage_key, new, existing)
        else:
            self.store.put(rtype.storage_key, new, existing)
            self._after_write(rtype, new)
        return _Result(new, warnings=warnings)

    # --- scale ---------------------------------------------------------------------------

    def _scale_object(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """``autoscaling/v1 Scale`` of an object (registry/apps/deployment scaleFromDeployment)."""
        scale = rtype.scale
        assert scale is not None  # routed here only for resources with a scale subresource
        meta = obj["metadata"]
        spec_replicas = jsonpath.first(obj, scale.spec_replicas_path)[1]
        status_replicas = jsonpath.first(obj, scale.status_replicas_path)[1]
        selector = ""
        if scale.label_selector_path:
            raw = jsonpath.first(obj, scale.label_selector_path)[1]
            if scale.selector_is_label_selector and isinstance(raw, dict):
                selector = _label_selector_string(raw)
            elif isinstance(raw, dict):  # replicationcontrollers: a plain label map
                selector = ",".join(f"{k}={v}" for k, v in sorted(raw.items()))
            elif isinstance(raw, str):
                selector = raw
        status: dict[str, Any] = {"replicas": status_replicas or 0}
        if selector:
            status["selector"] = selector
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                                "creationTimestamp") if k in meta},
            "spec": {"replicas": 1 if spec_replicas is None and not rtype.is_custom
                     else spec_replicas or 0},
            "status": status,
        }

    def _write_scale(self, req: ApiRequest, rtype: ResourceType, version: str,
                     existing: dict[str, Any], scale: Any) -> _Result:
        if not isinstance(scale, dict):
            raise errors.bad_request("the Scale provided is not an object")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid("autoscaling", "Scale", existing["metadata"]["name"], [
                FieldError(fielderrors.INVALID, "spec.replicas", replicas,
                           "must be greater than or equal to 0")])
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv and rv != existing["metadata"]["resourceVersion"]:
            raise errors.conflict(rtype.group, rtype.plural, existing["metadata"]["name"],
                                  errors.STALE)
        assert rtype.scale is not None
        path = [p for p in rtype.scale.spec_replicas_path.split(".") if p]
        updated = copy.deepcopy(self.present(rtype, version, existing))
        node = updated
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = replicas
        incoming = self._incoming(rtype, version, updated)
        return self._commit_update(req, rtype, version, existing, incoming, "")

    # --- delete --------------------------------------------------------------------------

    def _delete(self, req: ApiRequest, rtype: ResourceType, namespace: str,
                name: str) -> _Result:
        existing = self._get(rtype, namespace, name)
        options = _delete_options(req)
        pre = options.get("preconditions") or {}
        meta = existing["metadata"]
        if pre.get("uid") and pre["uid"] != meta.get("uid"):
            raise errors.conflict(rtype.group, rtype.plural, name,
                                  f"Precondition failed: UID in precondition: {pre['uid']}, UID "
                                  f"in object meta: {meta.get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta.get("resourceVersion"):
            raise errors.conflict(rtype.group, rtype.plural, name,
                                  f"Precondition failed: ResourceVersion in precondition: "
                                  f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                                  f"{meta.get('resourceVersion')}")
        if rtype.storage_key == NAMESPACES and name in _UNDELETABLE_NAMESPACES:
            raise errors.forbidden("", "namespaces", name, "this namespace may not be deleted")
        if req.dry_run:
            pending = bool(meta.get("finalizers"))
            return _Result(stamping.mark_deleting(existing) if pending else existing,
                           status=202 if pending else 200)
        if options.get("propagationPolicy") == "Orphan" or options.get("orphanDependents"):
            self._orphan_dependents(meta.get("uid", ""))
        final = self.delete_object(rtype.storage_key, existing)
        gone = self.store.get(rtype.storage_key, namespace, name) is None
        return _Result(final, status=200 if gone else 202)

    def delete_object(self, storage: StorageKey, existing: dict[str, Any]) -> dict[str, Any]:
        """Delete a stored object (API DELETE, garbage collection, namespace/CRD cleanup).

        Returns its last state: marked for deletion if finalizers (or content) hold it.
        """
        meta = existing["metadata"]
        if storage == NAMESPACES:
            return self._delete_namespace(existing)
        if storage == CRDS:
            return self._delete_crd(existing)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return existing
            marked = stamping.mark_deleting(existing)
            marked["metadata"]["resourceVersion"] = str(self.store.next_rv())
            self.store.put(storage, marked, existing)
            return marked
        final = copy.deepcopy(existing)
        final["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self._remove(storage, final, existing)
        return final

    def _delete_namespace(self, existing: dict[str, Any]) -> dict[str, Any]:
        name = existing["metadata"]["name"]
        if not existing["metadata"].get("deletionTimestamp"):
            marked = stamping.mark_deleting(existing)
            marked["status"] = {"phase": "Terminating"}
            marked["metadata"]["resourceVersion"] = str(self.store.next_rv())
            self.store.put(NAMESPACES, marked, existing)
            existing = marked
        for storage, obj in list(self.store.items()):
            if obj["metadata"].get("namespace") == name:
                self.delete_object(storage, obj)
        return self._finish_namespace(name) or existing

    def _finish_namespace(self, name: str) -> dict[str, Any] | None:
        """Remove a terminating namespace once nothing is left in it (namespace controller)."""
        ns = self.store.get(NAMESPACES, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return None
        if any(obj["metadata"].get("namespace") == name for _, obj in self.store.items()):
            return None
        final = copy.deepcopy(ns)
        final["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self._remove(NAMESPACES, final, ns)
        return final

    def _delete_crd(self, existing: dict[str, Any]) -> dict[str, Any]:
        meta = existing["metadata"]
        if not meta.get("deletionTimestamp"):
            marked = crds.with_status(stamping.mark_deleting(existing), existing)
            marked["metadata"]["resourceVersion"] = str(self.store.next_rv())
            self.store.put(CRDS, marked, existing)
            existing = marked
        rtype = self._crd_type(existing)
        if rtype is not None:
            for obj in list(self.store.list(rtype.storage_key)):
                self.delete_object(rtype.storage_key, obj)
        return self._finish_crd(existing["metadata"]["name"]) or existing

    def _crd_type(self, crd: dict[str, Any]) -> ResourceType | None:
        spec = crd.get("spec") or {}
        return self.registry.get(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))

    def _finish_crd(self, crd_name: str) -> dict[str, Any] | None:
        """Drop the cleanup finalizer once the CRD's instances are gone (its controller)."""
        crd = self.store.get(CRDS, "", crd_name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return None
        rtype = self._crd_type(crd)
        if rtype is not None and self.store.count(rtype.storage_key):
            return None
        updated = copy.deepcopy(crd)
        finalizers = [f for f in updated["metadata"].get("finalizers", [])
                      if f != crds.CLEANUP_FINALIZER]
        updated["metadata"]["finalizers"] = finalizers
        if not finalizers:
            del updated["metadata"]["finalizers"]
        updated["metadata"]["resourceVersion"] = str(self.store.next_rv())
        if finalizers:
            self.store.put(CRDS, updated, crd)
        else:
            self._remove(CRDS, updated, crd)
        return updated

    def _remove(self, storage: StorageKey, final: dict[str, Any], old: dict[str, Any]) -> None:
        """Remove for good, then let the "controllers" react: GC, namespace, CRD cleanup."""
        self.store.remove(storage, final, old)
        meta = final["metadata"]
        if storage == CRDS:
            spec = final.get("spec") or {}
            self.registry.remove(spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        self._collect_garbage(meta.get("uid", ""))
        if meta.get("namespace"):
            self._finish_namespace(meta["namespace"])
        rtype = self.registry.get(*storage)
        if rtype is not None and rtype.is_custom:
            self._finish_crd(rtype.crd_name)

    def _collect_garbage(self, owner_uid: str) -> None:
        """Background cascading deletion (the garbage collector): dependents of a removed owner
        are deleted when no owner of theirs is left; dangling references are dropped."""
        if not owner_uid:
            return
        dependents = [(s, o) for s, o in self.store.items()
                      if any(r.get("uid") == owner_uid
                             for r in o["metadata"].get("ownerReferences") or [])]
        if not dependents:
            return
        live = {o["metadata"].get("uid") for _, o in self.store.items()}
        for storage, obj in dependents:
            current = self.store.get(storage, obj["metadata"].get("namespace", ""),
                                     obj["metadata"]["name"])
            if current is None:
                continue
            refs = current["metadata"].get("ownerReferences") or []
            if any(r.get("uid") in live for r in refs):
                self._set_owner_refs(storage, current, [r for r in refs if r.get("uid") in live])
            else:
                self.delete_object(storage, current)

    def _orphan_dependents(self, owner_uid: str) -> None:
        for storage, obj in list(self.store.items()):
            refs = obj["metadata"].get("ownerReferences") or []
            if any(r.get("uid") == owner_uid for r in refs):
                self._set_owner_refs(storage, obj, [r for r in refs if r.get("uid") != owner_uid])

    def _set_owner_refs(self, storage: StorageKey, obj: dict[str, Any],
                        refs: list[dict[str, Any]]) -> None:
        updated = copy.deepcopy(obj)
        if refs:
            updated["metadata"]["ownerReferences"] = refs
        else:
            updated["metadata"].pop("ownerReferences", None)
        updated["metadata"]["resourceVersion"] = str(self.store.next_rv())
        self.store.put(storage, updated, obj)

    def _delete_collection(self, req: ApiRequest, rtype: ResourceType, version: str,
                           namespace: str) -> aiohttp.web.Response:
        matches = self._matcher(req, rtype, version, namespace)
        deleted = []
        for obj in self.store.list(rtype.storage_key, namespace or None):
            if matches(obj):
                deleted.append(obj if req.dry_run else self.delete_object(rtype.storage_key, obj))
        return json_response({
            "apiVersion": rtype.api_version(version),
            "kind": rtype.list_kind,
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": [self.present(rtype, version, o) for o in deleted],
        })

    # --- hooks ---------------------------------------------------------------------------

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


# --- helpers ---------------------------------------------------------------------------------


def json_response(body: Any, *, status: int = 200,
                  warnings: list[str] | None = None) -> aiohttp.web.Response:
    """A JSON response; ``warnings`` become ``Warning: 299 - "..."`` headers (RFC 7234)."""
    response = aiohttp.web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type="application/json",
    )
    for warning in warnings or []:
        response.headers.add("Warning", f'299 - {fielderrors.go_quote(warning)}')
    return response


def _metadata_errors(rtype: ResourceType, obj: dict[str, Any]) -> list[FieldError]:
    """ObjectMeta validation (apimachinery/pkg/api/validation/objectmeta.go), the common part."""
    meta = obj.get("metadata") or {}
    name = meta.get("name", "")
    problems: list[FieldError] = []
    if not name:
        return [FieldError(fielderrors.REQUIRED, "metadata.name",
                           detail="name or generateName is required")]
    if rtype.storage_key == NAMESPACES:
        pattern, message, limit = _DNS_LABEL, _LABEL_MSG, 63
    elif rtype.storage_key == ("", "services"):
        pattern, message, limit = _DNS_1035, _DNS_1035_MSG, 63
    else:
        pattern, message, limit = _DNS_SUBDOMAIN, _SUBDOMAIN_MSG, 253
    if rtype.storage_key == CRDS:
        pattern = _DNS_SUBDOMAIN
    if len(name) > limit:
        problems.append(FieldError(fielderrors.INVALID, "metadata.name", name,
                                   f"must be no more than {limit} characters"))
    if not pattern.match(name):
        problems.append(FieldError(fielderrors.INVALID, "metadata.name", name, message))
    for key, value in (meta.get("labels") or {}).items():
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            problems.append(FieldError(fielderrors.INVALID, "metadata.labels", value,
                                       _LABEL_VALUE_MSG))
        if not selectors.is_label_key(str(key)):
            problems.append(FieldError(fielderrors.INVALID, "metadata.labels", key,
                                       "name part must consist of alphanumeric characters, '-', "
                                       "'_' or '.'"))
    for key, value in (meta.get("annotations") or {}).items():
        if not isinstance(value, str):
            problems.append(FieldError(fielderrors.INVALID, f"metadata.annotations[{key}]",
                                       value, "annotation values must be strings"))
    return problems


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


def _delete_options(req: ApiRequest) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if req.body.strip():
        try:
            parsed = json.loads(req.body)
        except ValueError as exc:
            raise errors.bad_request(f"invalid DeleteOptions: {exc}") from exc
        if isinstance(parsed, dict):
            options.update(parsed)
    if req.query.get("propagationPolicy"):
        options["propagationPolicy"] = req.query["propagationPolicy"]
    return options


def _load_apply(body: bytes) -> dict[str, Any]:
    try:
        applied = yaml.safe_load(body)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc
    if not isinstance(applied, dict):
        raise errors.bad_request("the applied configuration must be an object")
    return applied


def _label_selector_string(selector: dict[str, Any]) -> str:
    """``metav1.LabelSelectorAsSelector(...).String()``."""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(str(key))
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(sorted(parts))


def _object_key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return (meta.get("namespace", ""), meta["name"])


def _encode_continue(key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode()


def _decode_continue(token: str | None) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        namespace, name = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, TypeError) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc
    return (str(namespace), str(name))


def _int_param(value: str | None) -> int:
    if not value:
        return 0
    try:
        return max(int(value), 0)
    except ValueError:
        raise errors.bad_request(f"invalid integer parameter: {value!r}") from None
