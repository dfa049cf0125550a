"""Events: one storage, two APIs (core ``v1`` and ``events.k8s.io/v1``).

As in the API server, both APIs read and write the same objects, converted field by field
(pkg/apis/events/v1 conversion.go): ``involvedObject`` <-> ``regarding``, ``message`` <->
``note``, ``source`` <-> ``deprecatedSource``, ``firstTimestamp``/``lastTimestamp``/``count``
<-> ``deprecatedFirstTimestamp``/``deprecatedLastTimestamp``/``deprecatedCount``,
``reportingComponent`` <-> ``reportingController``. Objects are stored in the core form.
"""

from __future__ import annotations

import copy
from typing import Any

EVENTS_API_VERSION = "events.k8s.io/v1"
_RENAMES = (  # (core field, events.k8s.io field)
    ("involvedObject", "regarding"),
    ("message", "note"),
    ("source", "deprecatedSource"),
    ("firstTimestamp", "deprecatedFirstTimestamp"),
    ("lastTimestamp", "deprecatedLastTimestamp"),
    ("count", "deprecatedCount"),
    ("reportingComponent", "reportingController"),
)


def is_events_api(group: str, plural: str) -> bool:
    return group == "events.k8s.io" and plural == "events"


def to_core(event: dict[str, Any]) -> dict[str, Any]:
    """An ``events.k8s.io/v1`` Event in the stored core form."""
    core = copy.deepcopy(event)
    for old, new in _RENAMES:
        if new in core:
            core[old] = core.pop(new)
    core["apiVersion"] = "v1"
    core["kind"] = "Event"
    return core


def from_core(event: dict[str, Any]) -> dict[str, Any]:
    """A stored core Event as ``events.k8s.io/v1``."""
    converted = copy.deepcopy(event)
    for old, new in _RENAMES:
        if old in converted:
            converted[new] = converted.pop(old)
    converted["apiVersion"] = EVENTS_API_VERSION
    converted["kind"] = "Event"
    return converted
