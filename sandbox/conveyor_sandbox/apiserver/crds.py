"""CustomResourceDefinitions: defaulting, validation, status, and the resource type they define.

What the real API server and its CRD controllers do, condensed:

- Defaulting (apiextensions/v1 defaults.go): ``names.singular`` = lower-cased kind,
  ``names.listKind`` = kind + "List", ``conversion.strategy: None``.
- Validation (apiextensions/validation): ``metadata.name`` must be ``<plural>.<group>``, the
  group must contain a dot, scope is Namespaced or Cluster (immutable), exactly one storage
  version, every version has a schema whose root is an object, CEL rules compile.
- Status (the naming and establishing controllers): ``acceptedNames`` mirror the names,
  conditions ``NamesAccepted=True`` (NoConflicts) and ``Established=True``
  (InitialNamesAccepted), ``storedVersions`` accumulate storage versions. Here this happens in
  the same write, so ``kubectl wait --for=condition=Established`` returns at once.
- Deletion: a CRD carries the ``customresourcecleanup.apiextensions.k8s.io`` finalizer; when it
  is deleted its instances are deleted, and the CRD goes away once they are all gone.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from . import celrules, fielderrors
from .fielderrors import FieldError
from .registry import PrinterColumn, ResourceType, ScaleInfo, VersionInfo, version_priority
from .stamping import now_rfc3339

CLEANUP_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def apply_defaults(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD with server-side defaults filled in (a new dict)."""
    crd = copy.deepcopy(crd)
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    kind = names.get("kind", "")
    if kind:
        names.setdefault("singular", kind.lower())
        names.setdefault("listKind", f"{kind}List")
    spec.setdefault("conversion", {"strategy": "None"})
    return crd


def validate(crd: dict[str, Any], old: dict[str, Any] | None) -> list[FieldError]:
    """Field errors of a CRD create or update (a useful subset of the server's checks)."""
    errs: list[FieldError] = []
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group = spec.get("group") or ""
    plural = names.get("plural") or ""
    name = (crd.get("metadata") or {}).get("name", "")
    if not group:
        errs.append(FieldError(fielderrors.REQUIRED, "spec.group"))
    elif "." not in group:
        errs.append(FieldError(fielderrors.INVALID, "spec.group", group,
                               "should be a domain with at least one dot"))
    if not plural:
        errs.append(FieldError(fielderrors.REQUIRED, "spec.names.plural"))
    elif not _DNS_LABEL.match(plural):
        errs.append(FieldError(fielderrors.INVALID, "spec.names.plural", plural,
                               "a lowercase RFC 1123 label must consist of lower case "
                               "alphanumeric characters or '-'"))
    if not names.get("kind"):
        errs.append(FieldError(fielderrors.REQUIRED, "spec.names.kind"))
    if group and plural and name != f"{plural}.{group}":
        errs.append(FieldError(fielderrors.INVALID, "metadata.name", name,
                               'must be spec.names.plural+"."+spec.group'))
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        errs.append(FieldError(fielderrors.NOT_SUPPORTED, "spec.scope", scope,
                               'supported values: "Cluster", "Namespaced"'))
    elif old is not None and (old.get("spec") or {}).get("scope") != scope:
        errs.append(FieldError(fielderrors.INVALID, "spec.scope", scope, "field is immutable"))
    versions = spec.get("versions") or []
    if not versions:
        errs.append(FieldError(fielderrors.REQUIRED, "spec.versions", detail="must have at least "
                               "one version"))
    storage = [v for v in versions if v.get("storage")]
    if versions and len(storage) != 1:
        errs.append(FieldError(fielderrors.INVALID, "spec.versions", f"{len(storage)} storage",
                               "must have exactly one version marked as storage version"))
    for index, version in enumerate(versions):
        path = f"spec.versions[{index}]"
        if not version.get("name"):
            errs.append(FieldError(fielderrors.REQUIRED, f"{path}.name"))
        schema = (version.get("schema") or {}).get("openAPIV3Schema")
        if not schema:
            errs.append(FieldError(fielderrors.REQUIRED, f"{path}.schema.openAPIV3Schema",
                                   detail="schemas are required"))
            continue
        if schema.get("type") != "object":
            errs.append(FieldError(fielderrors.INVALID, f"{path}.schema.openAPIV3Schema.type",
                                   schema.get("type", ""), 'must be "object" at the root'))
        errs.extend(_check_rules(schema, f"{path}.schema.openAPIV3Schema"))
    return errs


def _check_rules(schema: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if not isinstance(schema, dict):
        return errs
    for index, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        problem = celrules.check_rule_syntax(rule)
        if problem:
            errs.append(FieldError(
                fielderrors.INVALID, f"{path}.x-kubernetes-validations[{index}].rule",
                rule.get("rule", ""), f"compilation failed: {problem}",
            ))
    for key, child in (schema.get("properties") or {}).items():
        errs.extend(_check_rules(child, f"{path}.properties[{key}]"))
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            errs.extend(_check_rules(schema[key], f"{path}.{key}"))
    return errs


def with_status(crd: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
    """The CRD with the status its controllers would write (a new dict)."""
    crd = copy.deepcopy(crd)
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    old_status = (old or {}).get("status") or {}
    old_conditions = {c.get("type"): c for c in old_status.get("conditions") or []}
    now = now_rfc3339()

    def condition(kind: str, reason: str, message: str) -> dict[str, Any]:
        previous = old_conditions.get(kind)
        since = previous.get("lastTransitionTime") if previous and (
            previous.get("status") == "True") else now
        return {"type": kind, "status": "True", "lastTransitionTime": since, "reason": reason,
                "message": message}

    stored = list(old_status.get("storedVersions") or [])
    for version in spec.get("versions") or []:
        if version.get("storage") and version.get("name") not in stored:
            stored.append(version["name"])
    accepted = {key: names[key] for key in ("plural", "singular", "shortNames", "kind",
                                             "listKind", "categories") if names.get(key)}
    crd["status"] = {
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition("Established", "InitialNamesAccepted",
                      "the initial names have been accepted"),
        ],
        "acceptedNames": accepted,
        "storedVersions": stored,
    }
    if (crd.get("metadata") or {}).get("deletionTimestamp"):
        crd["status"]["conditions"].append({
            "type": "Terminating", "status": "True", "lastTransitionTime": now,
            "reason": "InstanceDeletionInProgress", "message": "CustomResource deletion is in "
            "progress",
        })
    return crd


def resource_type(crd: dict[str, Any]) -> ResourceType:
    """The resource type a (defaulted, valid) CRD defines."""
    spec = crd["spec"]
    names = spec["names"]
    versions: dict[str, VersionInfo] = {}
    status = False
    scale: ScaleInfo | None = None
    for version in sorted(spec.get("versions") or [],
                          key=lambda v: version_priority(v.get("name", ""))):
        subresources = version.get("subresources") or {}
        if "status" in subresources and (version.get("served", True) or version.get("storage")):
            status = True
        if "scale" in subresources and scale is None:
            sc = subresources["scale"] or {}
            scale = ScaleInfo(
                spec_replicas_path=sc.get("specReplicasPath", ".spec.replicas"),
                status_replicas_path=sc.get("statusReplicasPath", ".status.replicas"),
                label_selector_path=sc.get("labelSelectorPath", ""),
            )
        columns = None
        if version.get("additionalPrinterColumns"):
            columns = [
                PrinterColumn(
                    name=c["name"], type=c.get("type", "string"), json_path=c.get("jsonPath", ""),
                    format=c.get("format", ""), description=c.get("description", ""),
                    priority=int(c.get("priority", 0)),
                )
                for c in version["additionalPrinterColumns"]
            ]
        versions[version["name"]] = VersionInfo(
            name=version["name"],
            served=bool(version.get("served", True)),
            storage=bool(version.get("storage")),
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            columns=columns,
            selectable_fields=[
                f["jsonPath"].lstrip(".") for f in version.get("selectableFields") or []
                if f.get("jsonPath")
            ],
            deprecated=bool(version.get("deprecated")),
            deprecation_warning=version.get("deprecationWarning", ""),
        )
    subresources: dict[str, str] = {}
    sub_verbs: dict[str, list[str]] = {}
    if status:
        subresources["status"] = names["kind"]
        sub_verbs["status"] = ["get", "patch", "update"]
    if scale is not None:
        subresources["scale"] = "Scale"
        sub_verbs["scale"] = ["get", "patch", "update"]
    return ResourceType(
        group=spec["group"],
        plural=names["plural"],
        kind=names["kind"],
        singular=names.get("singular") or names["kind"].lower(),
        namespaced=spec.get("scope") == "Namespaced",
        versions=versions,
        verbs=["delete", "deletecollection", "get", "list", "patch", "create", "update", "watch"],
        short_names=list(names.get("shortNames") or []),
        categories=list(names.get("categories") or []),
        list_kind=names.get("listKind") or f"{names['kind']}List",
        subresources=subresources,
        subresource_verbs=sub_verbs,
        scale=scale,
        crd_name=crd["metadata"]["name"],
    )
