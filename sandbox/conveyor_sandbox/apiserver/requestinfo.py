"""What an HTTP request means to the Kubernetes API: verb, group, version, resource, names.

The parsing follows the API server's ``RequestInfoFactory.NewRequestInfo``
(k8s.io/apiserver/pkg/endpoints/request/requestinfo.go), which is also what RBAC evaluates:

- ``/api/{version}/...`` is the core group, ``/apis/{group}/{version}/...`` the named groups;
  shorter paths (``/api``, ``/apis``, ``/apis/{group}``) and anything else are non-resource
  requests whose verb is the lower-cased HTTP method.
- ``/namespaces/{ns}/{resource}/...`` puts the request in a namespace; ``/namespaces/{ns}`` and
  its ``status``/``finalize`` subresources are the ``namespaces`` resource itself.
- A ``/watch/`` path prefix (deprecated) makes the verb ``watch``.
- GET without a name is ``list``, or ``watch`` when the ``watch`` query parameter is true; a
  ``metadata.name=`` field selector then names the object (so RBAC can check resourceNames).
- DELETE without a name is ``deletecollection``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_VERBS_BY_METHOD = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
# Go's strconv.ParseBool, which the API server uses for boolean query parameters.
_TRUE = frozenset({"1", "t", "T", "true", "TRUE", "True"})
_FALSE = frozenset({"0", "f", "F", "false", "FALSE", "False"})
# A path segment that can be a name (k8s.io/apimachinery/pkg/api/validation/path).
_BAD_SEGMENT = re.compile(r"^\.\.?$|[/%]")


def parse_bool(value: str | None, *, default: bool = False) -> bool:
    """Parse a boolean query parameter like Go's ``strconv.ParseBool``; unknown → ``default``."""
    if value is None:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return default


@dataclasses.dataclass(frozen=True)
class RequestInfo:
    """The API meaning of one request. Empty strings mean "not applicable" (as in Go)."""

    method: str
    path: str
    verb: str
    is_resource: bool = False
    api_prefix: str = ""  # "api" or "apis"
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    name_from_path: bool = False  # False when the name comes from a metadata.name selector


def parse_request_info(method: str, path: str, query: Mapping[str, str]) -> RequestInfo:
    """Classify a request the way the API server does; never raises."""
    method = method.upper()
    parts = [part for part in path.strip("/").split("/") if part]
    non_resource = RequestInfo(method=method, path=path, verb=method.lower())
    if not parts or parts[0] not in ("api", "apis"):
        return non_resource
    prefix, rest = parts[0], parts[1:]
    if prefix == "apis":
        if len(rest) < 3:  # /apis, /apis/{group}, /apis/{group}/{version} are discovery
            return non_resource
        group, version, rest = rest[0], rest[1], rest[2:]
    else:
        if len(rest) < 2:  # /api, /api/{version}
            return non_resource
        group, version, rest = "", rest[0], rest[1:]

    verb_from_path = False
    if rest[0] == "watch":
        if len(rest) < 2:
            return non_resource
        verb, rest = "watch", rest[1:]
        verb_from_path = True
    else:
        verb = _VERBS_BY_METHOD.get(method, "")

    namespace = ""
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]

    resource = rest[0] if rest else ""
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 and not verb_from_path else ""
    # NB: for /api/v1/namespaces/{name}[/status] the namespace is {name}, as in the API server
    # (RBAC sees it so); the object itself is cluster-scoped all the same.
    name_from_path = bool(name)

    if not name and verb == "get":
        verb = "watch" if parse_bool(query.get("watch")) else "list"
    if not name and verb in ("list", "watch"):
        selected = _exact_name(query.get("fieldSelector", ""))
        if selected and not _BAD_SEGMENT.search(selected):
            name = selected
    if not name and verb == "delete":
        verb = "deletecollection"

    return RequestInfo(
        method=method,
        path=path,
        verb=verb,
        is_resource=True,
        api_prefix=prefix,
        group=group,
        version=version,
        resource=resource,
        subresource=subresource,
        namespace=namespace,
        name=name,
        name_from_path=name_from_path,
    )


def _exact_name(field_selector: str) -> str:
    """The name a field selector requires exactly (``metadata.name=x``), else ``""``."""
    for term in field_selector.split(","):
        for op in ("==", "="):
            key, sep, value = term.partition(op)
            if sep and key.strip() == "metadata.name" and not key.endswith("!"):
                return value.strip()
    return ""


@dataclasses.dataclass
class RequestRecord:
    """One API request as seen by the sandbox server, for assertions (e.g. against RBAC rules).

    ``verb`` is the RBAC verb (get/list/watch/create/update/patch/delete/deletecollection for
    resources; the lower-cased HTTP method for non-resource paths such as ``/apis``).
    ``status`` is the HTTP status code answered (for watches: once the stream started, 200).
    """

    method: str
    path: str
    query: dict[str, str]
    verb: str
    group: str
    version: str
    resource: str
    subresource: str
    namespace: str
    name: str
    is_resource: bool
    user_agent: str = ""
    status: int | None = None

    @classmethod
    def from_info(
        cls, info: RequestInfo, query: Mapping[str, str], user_agent: str = ""
    ) -> RequestRecord:
        return cls(
            method=info.method,
            path=info.path,
            query=dict(query),
            verb=info.verb,
            group=info.group,
            version=info.version,
            resource=info.resource,
            subresource=info.subresource,
            namespace=info.namespace,
            name=info.name,
            is_resource=info.is_resource,
            user_agent=user_agent,
        )
