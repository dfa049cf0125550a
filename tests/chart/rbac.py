"""Kubernetes RBAC evaluation, as pure functions, to check the chart's rules against API calls.

Semantics follow k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go (``RuleAllows``):

- a resource request is allowed by a rule when its verb, API group and resource match (``*``
  matches any; ``resource/subresource`` names a subresource; ``*/status`` matches the
  ``status`` subresource of any resource) and, if the rule lists ``resourceNames``, the
  request names one of them (create, list and watch without a ``metadata.name`` field
  selector name nothing, so such rules never allow them);
- a non-resource request (``/api``, ``/healthz``) is allowed by ``nonResourceURLs`` (exact,
  ``*``, or a prefix ending in ``*``) with a matching verb;
- a Role's rules (and a ClusterRole bound by a RoleBinding) apply in that namespace only; a
  ClusterRole bound by a ClusterRoleBinding applies everywhere, cluster-scoped objects included.

A request is anything with the attributes of
:class:`conveyor_sandbox.apiserver.RequestRecord`: ``verb``, ``group``,
``resource``, ``subresource``, ``namespace``, ``name``, ``is_resource``, ``path``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

Rule = dict[str, Any]  # a PolicyRule: apiGroups, resources, verbs, resourceNames, nonResourceURLs

#: The built-in ClusterRole ``system:discovery`` (bound to every authenticated user): clients
#: may always read discovery documents and health endpoints.
DISCOVERY_RULES: list[Rule] = [{
    "nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                        "/openapi/*", "/readyz", "/version", "/version/"],
    "verbs": ["get"],
}]


class Request(Protocol):
    """What RBAC sees of one API request."""

    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str
    name: str
    is_resource: bool
    path: str


@dataclass(frozen=True)
class Grant:
    """Rules and where they apply: ``namespace`` None means everywhere (ClusterRoleBinding)."""

    rules: tuple[Rule, ...]
    namespace: str | None = None
    source: str = ""


def _has(values: Iterable[str] | None, wanted: str) -> bool:
    values = list(values or [])
    return "*" in values or wanted in values


def _resource_matches(rule: Rule, resource: str, subresource: str) -> bool:
    combined = f"{resource}/{subresource}" if subresource else resource
    for item in rule.get("resources") or []:
        if item in ("*", combined):
            return True
        if subresource and item == f"*/{subresource}":
            return True
    return False


def _url_matches(rule: Rule, path: str) -> bool:
    for url in rule.get("nonResourceURLs") or []:
        if url == "*" or url == path or (url.endswith("*") and path.startswith(url[:-1])):
            return True
    return False


def rbac_allows(rules: Iterable[Rule], request: Request) -> bool:
    """Whether any of ``rules`` allows ``request`` (no namespace scoping: see :func:`allowed`)."""
    for rule in rules:
        if not _has(rule.get("verbs"), request.verb):
            continue
        if not request.is_resource:
            if _url_matches(rule, request.path):
                return True
            continue
        if not _has(rule.get("apiGroups"), request.group):
            continue
        if not _resource_matches(rule, request.resource, request.subresource):
            continue
        names = rule.get("resourceNames") or []
        if names and request.name not in names:
            continue
        return True
    return False


def allowed(grants: Iterable[Grant], request: Request) -> bool:
    """Whether a grant that applies where ``request`` is allows it."""
    for grant in grants:
        if grant.namespace is not None and (not request.is_resource
                                            or request.namespace != grant.namespace):
            continue
        if rbac_allows(grant.rules, request):
            return True
    return False


def grants_for(docs: Iterable[dict[str, Any]], account: str, namespace: str) -> list[Grant]:
    """The grants of ServiceAccount ``namespace/account`` among rendered objects ``docs``."""
    roles = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs
             if d.get("kind") in ("Role", "ClusterRole")}
    grants = []
    for doc in docs:
        if doc.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        if not any(s.get("kind") == "ServiceAccount" and s.get("name") == account
                   and s.get("namespace") == namespace for s in doc.get("subjects", [])):
            continue
        ref = doc["roleRef"]
        scope = doc["metadata"].get("namespace") if doc["kind"] == "RoleBinding" else None
        role_ns = scope if ref["kind"] == "Role" else None
        role = roles.get((ref["kind"], role_ns, ref["name"]))
        if role is None:
            raise LookupError(f"{doc['kind']} {doc['metadata']['name']} refers to a missing "
                              f"{ref['kind']} {ref['name']}")
        grants.append(Grant(tuple(role.get("rules", [])), scope,
                            f"{ref['kind']}/{ref['name']}" + (f" in {scope}" if scope else "")))
    return grants


def unused_rules(rules: Iterable[Rule], requests: Iterable[Request]) -> list[tuple[str, str, str]]:
    """``(apiGroup, resource, verb)`` triples that ``rules`` grant but no request used.

    Each rule is split into single-group, single-resource, single-verb rules (keeping its
    resourceNames); a triple is used when it alone allows one of ``requests``. A ``*``
    counts as used as soon as one request matches it, so callers that want least privilege
    should also refuse wildcards outright.
    """
    requests = [r for r in requests if r.is_resource]
    unused = []
    for rule in rules:
        for group in rule.get("apiGroups") or []:
            for resource in rule.get("resources") or []:
                for verb in rule.get("verbs") or []:
                    single = {"apiGroups": [group], "resources": [resource], "verbs": [verb],
                              "resourceNames": rule.get("resourceNames") or []}
                    if not any(rbac_allows([single], r) for r in requests):
                        unused.append((group, resource, verb))
    return unused
