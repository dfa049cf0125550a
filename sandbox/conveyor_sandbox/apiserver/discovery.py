"""API discovery documents: ``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/<g>[/<v>]``.

The legacy (unaggregated) discovery format (API concepts, "Discovery API"): ``APIVersions``,
``APIGroupList``/``APIGroup`` with a ``preferredVersion`` (the highest-priority served
version, as the server picks it for CRDs), and ``APIResourceList`` with one entry per resource
and per subresource (``widgets/status``; ``deployments/scale`` in group autoscaling/v1).
kubectl asks for the aggregated format first and falls back to this one when the response is
plain ``application/json``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .registry import Registry, ResourceType

KUBERNETES_VERSION = {
    # Matches kubectl v1.32 so no version-skew warnings are printed.
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.0-conveyor-sandbox",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2024-12-11T00:00:00Z",
    "goVersion": "go1.23.3",
    "compiler": "gc",
    "platform": "linux/amd64",
}


def server_version() -> dict[str, Any]:
    return dict(KUBERNETES_VERSION)


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0",
                                        "serverAddress": server_address}],
    }


def _group_entry(group: str, versions: list[str]) -> dict[str, Any]:
    return {
        "name": group,
        "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]},
    }


def group_list(registry: Registry) -> dict[str, Any]:
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_entry(g, vs) for g, vs in registry.groups().items() if g],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.groups().get(group)
    if not group or not versions:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1"} | _group_entry(group, versions)


def _storage_version_hash(rtype: ResourceType) -> str:
    digest = hashlib.sha256(f"{rtype.group}/{rtype.storage_version}/{rtype.kind}".encode())
    return digest.hexdigest()[:11]


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = registry.in_group_version(group, version)
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rtype in types:
        entry: dict[str, Any] = {
            "name": rtype.plural,
            "singularName": rtype.singular,
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": list(rtype.verbs),
        }
        if rtype.short_names:
            entry["shortNames"] = list(rtype.short_names)
        if rtype.categories:
            entry["categories"] = list(rtype.categories)
        if not rtype.virtual:
            entry["storageVersionHash"] = _storage_version_hash(rtype)
        resources.append(entry)
        for sub, kind in sorted(rtype.subresources.items()):
            sub_entry: dict[str, Any] = {
                "name": f"{rtype.plural}/{sub}",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": kind,
                "verbs": list(rtype.subresource_verbs.get(sub, ["get", "patch", "update"])),
            }
            if sub == "scale":
                sub_entry |= {"group": "autoscaling", "version": "v1"}
            resources.append(sub_entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def root_paths(registry: Registry) -> dict[str, Any]:
    paths = {"/api", "/api/v1", "/apis", "/version", "/openapi/v2", "/openapi/v3", "/healthz",
             "/livez", "/readyz"}
    for group, versions in registry.groups().items():
        if group:
            paths.add(f"/apis/{group}")
            paths.update(f"/apis/{group}/{v}" for v in versions)
    return {"paths": sorted(paths)}
