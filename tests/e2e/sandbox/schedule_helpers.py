"""Helpers of the Schedule end-to-end tests: manifests, reads of runs, Events and status."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from conveyor_sandbox.sandbox import Sandbox

API = "/apis/conveyor.dev/v1alpha1/namespaces/default"


def workflow(name: str, tasks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A Workflow with one quick ``set`` task (or ``tasks``) and an input ``day``."""
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Workflow",
            "metadata": {"name": name},
            "spec": {"inputs": [{"name": "day", "default": "none"}],
                     "tasks": tasks or [{"name": "note", "type": "set",
                                         "params": {"day": "${{ inputs.day }}"}}]}}


def schedule(name: str, workflow_name: str, cron: str, **spec: Any) -> dict[str, Any]:
    """A Schedule of ``workflow_name`` on ``cron`` with more ``spec`` fields."""
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Schedule",
            "metadata": {"name": name},
            "spec": {"workflowRef": {"name": workflow_name}, "schedule": cron, **spec}}


async def api(sandbox: Sandbox, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """One request to the sandbox's API server; the JSON answer (``{}`` for a 404)."""
    assert sandbox._session is not None
    async with sandbox._session.request(method, sandbox.api.url + path, **kwargs) as response:
        if response.status == 404:
            return {}
        assert response.status < 300, await response.text()
        return await response.json()


async def runs(sandbox: Sandbox, name: str) -> list[dict[str, Any]]:
    """The Executions the Schedule ``name`` created, by scheduled time."""
    found = await api(sandbox, "GET", f"{API}/executions",
                      params={"labelSelector": f"conveyor.dev/schedule={name}"})
    items = found.get("items", [])
    return sorted(items, key=lambda e: e["metadata"]["annotations"][
        "conveyor.dev/scheduled-time"])


def scheduled(items: list[dict[str, Any]]) -> list[str]:
    """``HH:MM`` (UTC) of each run's scheduled time, checking it matches the run's name."""
    found = []
    for item in items:
        stamp = item["metadata"]["annotations"]["conveyor.dev/scheduled-time"]
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        assert item["metadata"]["name"].endswith(f"-{int(moment.timestamp()) // 60}")
        found.append(moment.astimezone(UTC).strftime("%H:%M"))
    return found


async def status(sandbox: Sandbox, name: str) -> dict[str, Any]:
    """The Schedule's status (``{}`` before the operator wrote one)."""
    return (await api(sandbox, "GET", f"{API}/schedules/{name}")).get("status") or {}


async def events(sandbox: Sandbox, name: str) -> list[tuple[str, str]]:
    """``(reason, message)`` of the Events about the Schedule ``name``, oldest first."""
    found = await api(sandbox, "GET", "/api/v1/namespaces/default/events")
    items = [e for e in found.get("items", [])
             if e["involvedObject"]["kind"] == "Schedule" and e["involvedObject"]["name"] == name]
    items.sort(key=lambda e: (e.get("firstTimestamp") or "", e["metadata"]["name"]))
    return [(e["reason"], e["message"]) for e in items]


async def delete_schedule(sandbox: Sandbox, name: str) -> None:
    """Delete the Schedule (its runs go with it: garbage collection by owner)."""
    await api(sandbox, "DELETE", f"{API}/schedules/{name}")


def utc(text: str) -> datetime:
    """An aware UTC datetime from ``2025-03-09T07:00:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)
