"""Which resources the server serves: built-ins from a vendored catalogue plus CRD-defined ones.

Built-in resources (names, kinds, verbs, short names, categories, subresources) come from the
discovery documents in ``data/builtin-resources.json.gz`` (captured from a real cluster; its
source, version and licence are in ``data/README.md``), minus groups that are not part of
Kubernetes itself (Gateway API CRDs, the metrics aggregated API). Custom resources are
registered and unregistered as CRDs come and go (see :mod:`.crds`). A resource type is what
discovery, OpenAPI, printing, validation and the REST handlers need to know about one
``group/plural``.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import importlib.resources
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

#: The built-in resource catalogue, relative to this package (see ``data/README.md``).
CATALOGUE = ("data", "builtin-resources.json.gz")
_SKIPPED_GROUPS = frozenset({"gateway.networking.k8s.io", "metrics.k8s.io"})
# Resources whose only verb is create (reviews, bindings) are answered, never stored.
_VIRTUAL_VERBS = frozenset({"create"})


@dataclasses.dataclass(frozen=True)
class PrinterColumn:
    """A Table column (CRD ``additionalPrinterColumns`` or a built-in printer's).

    ``compute`` replaces ``json_path`` for built-ins whose cells are derived (e.g. pod READY).
    """

    name: str
    type: str = "string"  # string, integer, number, boolean, date
    json_path: str = ""
    format: str = ""
    description: str = ""
    priority: int = 0
    compute: Callable[[dict[str, Any]], Any] | None = None


AGE_COLUMN = PrinterColumn(
    name="Age", type="date", json_path=".metadata.creationTimestamp",
    description="CreationTimestamp is a timestamp representing the server time when this "
    "object was created.",
)


@dataclasses.dataclass(frozen=True)
class ScaleInfo:
    """Where a ``/scale`` subresource reads and writes replicas (CRD ``subresources.scale``).

    ``selector_is_label_selector``: the path holds a ``LabelSelector`` object (Deployments)
    rather than the serialized selector string CRDs point to.
    """

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str = ""
    selector_is_label_selector: bool = False


@dataclasses.dataclass
class VersionInfo:
    """One served or stored version of a resource."""

    name: str
    served: bool = True
    storage: bool = False
    schema: dict[str, Any] | None = None  # openAPIV3Schema; None: anything goes
    columns: list[PrinterColumn] | None = None  # None: NAME + AGE
    selectable_fields: list[str] = dataclasses.field(default_factory=list)
    deprecated: bool = False
    deprecation_warning: str = ""


@dataclasses.dataclass
class ResourceType:
    """Everything the server knows about one ``group/plural``."""

    group: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    versions: dict[str, VersionInfo]
    verbs: list[str]
    short_names: list[str] = dataclasses.field(default_factory=list)
    categories: list[str] = dataclasses.field(default_factory=list)
    list_kind: str = ""
    subresources: dict[str, str] = dataclasses.field(default_factory=dict)  # name -> kind
    subresource_verbs: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    scale: ScaleInfo | None = None
    crd_name: str = ""  # set for custom resources
    virtual: bool = False
    # Where the objects live; differs for events.k8s.io/v1 events (stored as core v1 events).
    storage_key: tuple[str, str] = ("", "")
    # Extra field-selector labels beyond metadata.name/namespace: label -> dotted path.
    field_labels: dict[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.list_kind:
            self.list_kind = f"{self.kind}List"
        if self.storage_key == ("", ""):
            self.storage_key = (self.group, self.plural)

    @property
    def is_custom(self) -> bool:
        return bool(self.crd_name)

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    @property
    def storage_version(self) -> str:
        for version in self.versions.values():
            if version.storage:
                return version.name
        return next(iter(self.versions))

    def served(self, version: str) -> VersionInfo | None:
        info = self.versions.get(version)
        return info if info is not None and info.served else None

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def resource_label(self) -> str:
        """``widgets.test.conveyor.dev`` (as in error messages)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def supports_field(self, version: str, label: str) -> bool:
        if label in ("metadata.name", "metadata.namespace") or label in self.field_labels:
            return True
        info = self.versions.get(version)
        return info is not None and label in info.selectable_fields


_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key for Kubernetes versions, highest priority first when sorted ascending:
    GA before beta before alpha, higher numbers first, non-conforming names last by name
    (``version.CompareKubeAwareVersionStrings``)."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0, version)
    major, stage, minor = int(match.group(1)), match.group(2), int(match.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, version)


def _scale_for(group: str, plural: str) -> ScaleInfo | None:
    if (group, plural) in {
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("apps", "replicasets"),
        ("", "replicationcontrollers"),
    }:
        return ScaleInfo(
            label_selector_path=".spec.selector",
            selector_is_label_selector=plural != "replicationcontrollers",
        )
    return None


@functools.cache
def _bundled_documents() -> list[dict[str, Any]]:
    data = importlib.resources.files(__package__).joinpath(*CATALOGUE).read_bytes()
    docs: list[dict[str, Any]] = json.loads(gzip.decompress(data))
    return docs


def builtin_types() -> list[ResourceType]:
    """The built-in resource types, one per ``group/plural`` with all its versions."""
    types: dict[tuple[str, str], ResourceType] = {}
    for doc in _bundled_documents():
        group_version: str = doc["groupVersion"]
        group, _, version = group_version.rpartition("/")
        if group in _SKIPPED_GROUPS:
            continue
        subresources: dict[str, dict[str, Any]] = {}
        for entry in doc.get("resources", []):
            if "/" in entry["name"]:
                subresources[entry["name"]] = entry
        for entry in doc.get("resources", []):
            plural: str = entry["name"]
            if "/" in plural:
                continue
            key = (group, plural)
            rtype = types.get(key)
            if rtype is None:
                subs = {
                    name.split("/", 1)[1]: sub.get("kind", entry["kind"])
                    for name, sub in subresources.items()
                    if name.split("/", 1)[0] == plural
                }
                sub_verbs = {
                    name.split("/", 1)[1]: list(sub.get("verbs", []))
                    for name, sub in subresources.items()
                    if name.split("/", 1)[0] == plural
                }
                verbs = list(entry.get("verbs", []))
                rtype = ResourceType(
                    group=group,
                    plural=plural,
                    kind=entry["kind"],
                    singular=entry.get("singularName") or entry["kind"].lower(),
                    namespaced=bool(entry.get("namespaced")),
                    versions={},
                    verbs=verbs,
                    short_names=list(entry.get("shortNames", [])),
                    categories=list(entry.get("categories", [])),
                    subresources=subs,
                    subresource_verbs=sub_verbs,
                    scale=_scale_for(group, plural),
                    virtual=set(verbs) <= _VIRTUAL_VERBS,
                )
                types[key] = rtype
            rtype.versions[version] = VersionInfo(name=version)
    for rtype in types.values():
        ordered = sorted(rtype.versions, key=version_priority)
        rtype.versions = {name: rtype.versions[name] for name in ordered}
        rtype.versions[ordered[0]].storage = True
    _customize_builtins(types)
    return list(types.values())


def _customize_builtins(types: dict[tuple[str, str], ResourceType]) -> None:
    """Built-in details the bundle lacks: field labels the server supports, printer columns."""
    # Field labels of core objects (pkg/registry/core/*/strategy.go ...FieldsSet functions).
    event_fields = {
        f"involvedObject.{field}": f"involvedObject.{field}"
        for field in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                      "fieldPath")
    }
    event_fields |= {
        "reason": "reason", "reportingComponent": "reportingComponent",
        "source": "source.component", "type": "type",
    }
    if ("", "events") in types:
        types[("", "events")].field_labels = event_fields
    if ("events.k8s.io", "events") in types:
        rtype = types[("events.k8s.io", "events")]
        rtype.storage_key = ("", "events")
        rtype.field_labels = dict(event_fields) | {
            f"regarding.{f}": f"involvedObject.{f}"
            for f in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion",
                      "fieldPath")
        }
    if ("", "pods") in types:
        types[("", "pods")].field_labels = {
            label: label for label in (
                "spec.nodeName", "spec.restartPolicy", "spec.schedulerName",
                "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP",
                "status.nominatedNodeName",
            )
        }
    if ("", "namespaces") in types:
        types[("", "namespaces")].field_labels = {"status.phase": "status.phase"}
    if ("", "secrets") in types:
        types[("", "secrets")].field_labels = {"type": "type"}
    from .tables import builtin_columns  # the printers live with the table code

    for key, columns in builtin_columns().items():
        if key in types:
            for info in types[key].versions.values():
                info.columns = columns


class Registry:
    """The served resource types, looked up by ``(group, version, plural)``."""

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], ResourceType] = {}
        for rtype in builtin_types():
            self._types[(rtype.group, rtype.plural)] = rtype
        self.revision = 0  # bumped on every change, for caches of derived documents
        self.cache: dict[str, tuple[int, Any]] = {}  # name -> (revision, derived document)

    def add(self, rtype: ResourceType) -> None:
        self._types[(rtype.group, rtype.plural)] = rtype
        self.revision += 1

    def remove(self, group: str, plural: str) -> None:
        if self._types.pop((group, plural), None) is not None:
            self.revision += 1

    def get(self, group: str, plural: str) -> ResourceType | None:
        return self._types.get((group, plural))

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        """The type serving ``group/version/plural``, or ``None`` (not served: 404)."""
        rtype = self._types.get((group, plural))
        if rtype is None or rtype.served(version) is None:
            return None
        return rtype

    def by_kind(self, group: str, kind: str) -> ResourceType | None:
        for rtype in self._types.values():
            if rtype.group == group and rtype.kind == kind:
                return rtype
        return None

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._types.values()))

    def groups(self) -> dict[str, list[str]]:
        """Served versions per group, highest priority first (for discovery)."""
        result: dict[str, set[str]] = {}
        for rtype in self._types.values():
            for version in rtype.versions.values():
                if version.served:
                    result.setdefault(rtype.group, set()).add(version.name)
        return {g: sorted(vs, key=version_priority) for g, vs in result.items()}

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return sorted(
            (t for t in self._types.values() if t.group == group and t.served(version)),
            key=lambda t: t.plural,
        )
