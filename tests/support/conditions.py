"""Reading kstatus conditions off a status document in tests."""

from __future__ import annotations


def ready_condition(status: dict | None) -> dict:
    """The ``Ready`` condition of ``status`` (a resource's ``.status``), or ``{}``."""
    return {c["type"]: c for c in (status or {}).get("conditions", [])}.get("Ready", {})


def condition(status: dict | None, kind: str) -> dict:
    """The condition of type ``kind`` of ``status`` (a resource's ``.status``), or ``{}``."""
    return {c["type"]: c for c in (status or {}).get("conditions", [])}.get(kind, {})
