"""Server-side printing: ``meta.k8s.io/v1 Table`` responses for kubectl.

kubectl asks for tables with ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io, ...``
and prints the cells as they come. The rules follow the API server:

- Custom resources (apiextensions-apiserver tableconvertor): a ``Name`` column (format
  ``name``), then the version's ``additionalPrinterColumns``; when a CRD declares none, one
  ``Age`` column over ``.metadata.creationTimestamp``. Each cell is the first JSONPath result;
  ``string`` cells are printed as Go prints them, ``integer``/``number``/``boolean`` stay JSON
  values, ``date`` cells are rendered on the server as a human age (``5m``, ``3h2m``:
  ``duration.HumanDuration``); missing values are ``null`` (kubectl shows ``<none>``).
- Rows carry ``object``: ``PartialObjectMetadata`` by default or with ``includeObject=Metadata``,
  the full object with ``includeObject=Object``, nothing with ``None``.
- Built-ins get NAME + AGE, except a few with their familiar columns (namespaces, pods,
  deployments, events, leases, CRDs).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from . import fielderrors, jsonpath
from .registry import AGE_COLUMN, PrinterColumn, ResourceType

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating "
    "resources, although some resources may allow a client to request the generation of an "
    "appropriate name automatically. Name is primarily intended for creation idempotence and "
    "configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}


def parse_accept(header: str | None) -> list[tuple[str, dict[str, str]]]:
    """Media ranges of an Accept header as ``(type, params)`` in the client's order."""
    result = []
    for item in (header or "").split(","):
        pieces = [p.strip() for p in item.split(";")]
        if not pieces[0]:
            continue
        params = {}
        for piece in pieces[1:]:
            key, _, value = piece.partition("=")
            params[key.strip()] = value.strip().strip('"')
        result.append((pieces[0].lower(), params))
    return result


def wants(header: str | None, as_kind: str) -> str | None:
    """The meta.k8s.io version of ``as=<as_kind>`` the client accepts first, if any."""
    for media, params in parse_accept(header):
        if media not in ("application/json", "*/*", "application/*"):
            continue
        if params.get("as") == as_kind and params.get("g") == "meta.k8s.io":
            version = params.get("v", "v1")
            if version in ("v1", "v1beta1"):
                return version
    return None


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration`` (k8s.io/apimachinery/pkg/util/duration)."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        rem = s % 60
        return f"{minutes}m" if rem == 0 else f"{minutes}m{rem}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        rem = minutes % 60
        return f"{hours}h" if rem == 0 else f"{hours}h{rem}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        rem = hours % 24
        return f"{hours // 24}d" if rem == 0 else f"{hours // 24}d{rem}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if days == 0 else f"{hours // 24 // 365}y{days}d"
    return f"{hours // 24 // 365}y"


def parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: Any, now: datetime.datetime | None = None) -> str:
    """A timestamp as an age, ``<unknown>`` when absent (``ConvertToHumanReadableDateType``)."""
    when = parse_time(value)
    if when is None:
        return "<unknown>"
    now = now or datetime.datetime.now(datetime.UTC)
    return human_duration((now - when).total_seconds())


def _cell(column: PrinterColumn, obj: dict[str, Any], now: datetime.datetime) -> Any:
    if column.compute is not None:
        return column.compute(obj)
    found, value = jsonpath.first(obj, column.json_path)
    if not found or value is None:
        return None
    match column.type:  # cellForJSONValue in the tableconvertor
        case "date":
            if not isinstance(value, str):
                return None
            return age(value, now) if parse_time(value) else "<invalid>"
        case "string":
            return fielderrors.go_print(value)
        case "integer":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return int(value)
        case "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return None
            return float(value)
        case "boolean":
            return value if isinstance(value, bool) else None
    return fielderrors.go_print(value)


def columns_for(rtype: ResourceType, version: str) -> list[PrinterColumn]:
    info = rtype.versions.get(version)
    if info is None or info.columns is None:
        return [AGE_COLUMN]
    return info.columns


def column_definitions(columns: list[PrinterColumn]) -> list[dict[str, Any]]:
    return [dict(NAME_COLUMN)] + [
        {
            "name": c.name,
            "type": c.type,
            "format": c.format,
            "description": c.description,
            "priority": c.priority,
        }
        for c in columns
    ]


def partial_metadata(obj: dict[str, Any], table_version: str) -> dict[str, Any]:
    return {
        "kind": "PartialObjectMetadata",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": obj.get("metadata", {}),
    }


def to_table(
    rtype: ResourceType,
    version: str,
    objects: list[dict[str, Any]],
    *,
    include_object: str | None,
    table_version: str = "v1",
    list_meta: dict[str, Any] | None = None,
    now: datetime.datetime | None = None,
) -> dict[str, Any]:
    """Render objects (already in the requested version) as a Table."""
    now = now or datetime.datetime.now(datetime.UTC)
    columns = columns_for(rtype, version)
    rows = []
    for obj in objects:
        row: dict[str, Any] = {
            "cells": [obj.get("metadata", {}).get("name", "")]
            + [_cell(column, obj, now) for column in columns],
        }
        if include_object in (None, "", "Metadata"):
            row["object"] = partial_metadata(obj, table_version)
        elif include_object == "Object":
            row["object"] = obj
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": f"meta.k8s.io/{table_version}",
        "metadata": list_meta or {},
        "columnDefinitions": column_definitions(columns),
        "rows": rows,
    }


def _get(obj: dict[str, Any], path: str) -> Any:
    return jsonpath.first(obj, path)[1]


def _pod_ready(pod: dict[str, Any]) -> str:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    containers = (pod.get("spec") or {}).get("containers") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{len(containers)}"


def _pod_status(pod: dict[str, Any]) -> str:
    """kubectl's STATUS of a pod (printPod): a container's waiting or terminated reason
    over the pod's phase, ``Terminating`` once it is being deleted."""
    status = pod.get("status") or {}
    reason = status.get("reason") or status.get("phase") or ""
    for container in status.get("containerStatuses") or []:
        state = container.get("state") or {}
        waiting, done = state.get("waiting") or {}, state.get("terminated")
        if waiting.get("reason"):
            reason = waiting["reason"]
        elif done is not None:
            signal = done.get("signal")
            reason = done.get("reason") or (f"Signal:{signal}" if signal
                                            else f"ExitCode:{done.get('exitCode', 0)}")
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        reason = "Terminating"
    return reason


def _pod_restarts(pod: dict[str, Any]) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return sum(int(s.get("restartCount") or 0) for s in statuses)


def _deployment_ready(deploy: dict[str, Any]) -> str:
    ready = _get(deploy, ".status.readyReplicas") or 0
    wanted = _get(deploy, ".spec.replicas")
    return f"{ready}/{1 if wanted is None else wanted}"


def _event_last_seen(event: dict[str, Any]) -> str:
    for path in (".lastTimestamp", ".eventTime", ".firstTimestamp", ".metadata.creationTimestamp"):
        value = _get(event, path)
        if value:
            return age(value)
    return "<unknown>"


def _event_object(event: dict[str, Any]) -> str:
    target = event.get("involvedObject") or event.get("regarding") or {}
    return f"{str(target.get('kind', '')).lower()}/{target.get('name', '')}"


def builtin_columns() -> dict[tuple[str, str], list[PrinterColumn]]:
    """Columns of the built-in printers we imitate (pkg/printers/internalversion)."""
    computed: Callable[..., PrinterColumn] = PrinterColumn
    event_columns = [
        computed(name="Last Seen", compute=_event_last_seen),
        PrinterColumn(name="Type", json_path=".type"),
        PrinterColumn(name="Reason", json_path=".reason"),
        computed(name="Object", compute=_event_object),
        PrinterColumn(name="Message", json_path=".message"),
    ]
    return {
        ("", "namespaces"): [PrinterColumn(name="Status", json_path=".status.phase"), AGE_COLUMN],
        ("", "pods"): [
            computed(name="Ready", compute=_pod_ready),
            computed(name="Status", compute=_pod_status),
            computed(name="Restarts", type="integer", compute=_pod_restarts),
            AGE_COLUMN,
        ],
        ("apps", "deployments"): [
            computed(name="Ready", compute=_deployment_ready),
            PrinterColumn(name="Up-to-date", type="integer", json_path=".status.updatedReplicas"),
            PrinterColumn(name="Available", type="integer",
                          json_path=".status.availableReplicas"),
            AGE_COLUMN,
        ],
        ("", "events"): event_columns,
        ("events.k8s.io", "events"): [
            computed(name="Last Seen", compute=_event_last_seen),
            PrinterColumn(name="Type", json_path=".type"),
            PrinterColumn(name="Reason", json_path=".reason"),
            computed(name="Object", compute=_event_object),
            PrinterColumn(name="Message", json_path=".note"),
        ],
        ("coordination.k8s.io", "leases"): [
            PrinterColumn(name="Holder", json_path=".spec.holderIdentity"),
            AGE_COLUMN,
        ],
        ("apiextensions.k8s.io", "customresourcedefinitions"): [
            PrinterColumn(name="Created At", type="date", format="date-time",
                          json_path=".metadata.creationTimestamp",
                          compute=lambda crd: crd.get("metadata", {}).get("creationTimestamp")),
        ],
    }
