"""The Executions a Schedule creates (pure): their names, labels, annotations, owner and
inputs, and which of them count as open or finished.

As a CronJob names its Jobs ``<cronjob>-<scheduled time in minutes since the epoch>``, a
Schedule names each run ``<schedule>-<unix minutes of the scheduled time>``: the same tick
always gets the same name, so a restarted, slow or second operator that creates it again gets
409 AlreadyExists instead of a second run. The name stays within 63 characters (it can serve
as a label value, like a Job's name on its Pods): a Schedule name longer than
:data:`MAX_PREFIX` is cut and given a hash of the whole name, so two long names never share
runs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Any

from conveyor_engine.phases import EXECUTION_FINAL, ExecutionPhase

from ..resources import API_VERSION, ScheduleSpec
from ..status.conditions import rfc3339

#: Label on every run: the Schedule's name (shortened with a hash when over 63 characters).
SCHEDULE_LABEL = "conveyor.dev/schedule"
#: Annotation on every run: its scheduled time, RFC 3339 in UTC.
SCHEDULED_TIME_ANNOTATION = "conveyor.dev/scheduled-time"
#: Longest Schedule name used whole in a run's name: 52, as for a CronJob (so that the
#: name with ``-`` and the 8 digits of the unix minutes stays within 63 characters).
MAX_PREFIX = 52
MAX_LABEL = 63
#: ``${{ execution.scheduledTime }}`` in an input value (spaces inside the braces optional).
_TEMPLATE = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
SCHEDULED_TIME_EXPRESSION = "execution.scheduledTime"


def _shorten(name: str, limit: int) -> str:
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[:limit - 9].rstrip('-.')}-{digest}"


def run_name(schedule: str, scheduled: datetime) -> str:
    """The Execution name of the tick at ``scheduled`` (aware): ``<schedule>-<unix
    minutes>``, with the schedule part cut to :data:`MAX_PREFIX` plus a hash when longer."""
    minutes = int(scheduled.timestamp()) // 60
    return f"{_shorten(schedule, MAX_PREFIX)}-{minutes}"


def schedule_label(schedule: str) -> str:
    """The value of :data:`SCHEDULE_LABEL` for ``schedule`` (at most 63 characters)."""
    return _shorten(schedule, MAX_LABEL)


class InputsError(ValueError):
    """An input value of a Schedule uses an expression other than
    ``${{ execution.scheduledTime }}``; the message names the input."""


def render_inputs(inputs: Mapping[str, Any], scheduled: datetime, zone: tzinfo) -> dict[str, Any]:
    """``spec.inputs`` for the tick at ``scheduled``: every ``${{ execution.scheduledTime }}``
    in a string (at any depth) becomes the scheduled time in RFC 3339 with the Schedule's
    zone offset (``2025-03-09T03:00:00-04:00``; ``...Z`` in UTC), so a nightly run knows its
    local day. Any other ``${{ }}`` raises :class:`InputsError` naming the input: the engine
    evaluates expressions in tasks, not in inputs, so it would arrive as plain text."""
    text = scheduled.astimezone(zone).isoformat(timespec="seconds")
    if text.endswith("+00:00") and scheduled.astimezone(zone).tzname() in ("UTC", "Z"):
        text = text[:-6] + "Z"

    def render(value: Any, path: str) -> Any:
        if isinstance(value, str):
            def substitute(match: re.Match[str]) -> str:
                if match.group(1) != SCHEDULED_TIME_EXPRESSION:
                    raise InputsError(
                        f"spec.inputs.{path}: only ${{{{ {SCHEDULED_TIME_EXPRESSION} }}}} can "
                        f"be used in a Schedule's inputs, not ${{{{ {match.group(1)} }}}}")
                return text
            return _TEMPLATE.sub(substitute, value)
        if isinstance(value, Mapping):
            return {k: render(v, f"{path}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [render(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return value

    return {name: render(value, name) for name, value in inputs.items()}


@dataclass(frozen=True, slots=True)
class Owner:
    """The Schedule a run belongs to."""

    name: str
    namespace: str
    uid: str


def run_manifest(owner: Owner, spec: ScheduleSpec, scheduled: datetime,
                 inputs: dict[str, Any]) -> dict[str, Any]:
    """The Execution for the tick at ``scheduled``: its deterministic name, the label and
    annotation naming the Schedule and the time, the Schedule as its controller owner (so
    deleting the Schedule garbage-collects its runs), the Workflow and ``inputs`` (already
    rendered) and the Schedule's ``ttlSecondsAfterFinished`` and ``priority``."""
    run_spec: dict[str, Any] = {"workflowRef": {"name": spec.workflow_ref.name},
                                "inputs": inputs}
    if spec.ttl_seconds_after_finished is not None:
        run_spec["ttlSecondsAfterFinished"] = spec.ttl_seconds_after_finished
    if spec.priority is not None:
        run_spec["priority"] = spec.priority
    return {
        "apiVersion": API_VERSION,
        "kind": "Execution",
        "metadata": {
            "name": run_name(owner.name, scheduled),
            "namespace": owner.namespace,
            "labels": {SCHEDULE_LABEL: schedule_label(owner.name)},
            "annotations": {SCHEDULED_TIME_ANNOTATION: rfc3339(scheduled)},
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Schedule",
                                 "name": owner.name, "uid": owner.uid, "controller": True}],
        },
        "spec": run_spec,
    }


@dataclass(frozen=True, slots=True)
class Run:
    """One Execution a Schedule created, as read back: name, uid, scheduled time (from its
    annotation; None if missing), phase (None before the operator wrote one) and finish."""

    name: str
    uid: str
    scheduled: datetime | None
    phase: str | None
    finished_at: str | None = None
    cancel_requested: bool = False

    @property
    def open(self) -> bool:
        """Not finished: no phase yet, Pending or Running."""
        return self.phase not in EXECUTION_FINAL


def owned_runs(objects: list[dict[str, Any]], owner_uid: str) -> list[Run]:
    """The Executions among ``objects`` whose controller owner is the Schedule with uid
    ``owner_uid`` (a Schedule re-created under the same name does not adopt the runs of the
    one before), sorted by scheduled time, then name."""
    runs = []
    for obj in objects:
        meta = obj.get("metadata") or {}
        refs = meta.get("ownerReferences") or []
        if not any(r.get("uid") == owner_uid and r.get("controller") for r in refs):
            continue
        stamp = (meta.get("annotations") or {}).get(SCHEDULED_TIME_ANNOTATION)
        status = obj.get("status") or {}
        runs.append(Run(meta.get("name", ""), meta.get("uid", ""), parse_time(stamp),
                        status.get("phase"), status.get("finishedAt"),
                        bool((obj.get("spec") or {}).get("cancel"))))
    runs.sort(key=lambda r: (r.scheduled or datetime.min.replace(tzinfo=UTC), r.name))
    return runs


def parse_time(text: str | None) -> datetime | None:
    """An RFC 3339 timestamp as written in status and annotations (``...Z`` or an offset)
    as an aware UTC datetime; None when absent or malformed (a hand-edited value is
    ignored rather than failing the Schedule)."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


def runs_to_delete(runs: list[Run], *, successful_limit: int, failed_limit: int) -> list[Run]:
    """Finished runs beyond the history limits, oldest first: keep the newest
    ``successful_limit`` Succeeded runs and the newest ``failed_limit`` Failed or Cancelled
    ones (CronJob's ``successfulJobsHistoryLimit``/``failedJobsHistoryLimit``); open runs are
    never deleted."""
    succeeded = [r for r in runs if r.phase == ExecutionPhase.SUCCEEDED]
    failed = [r for r in runs if r.phase in (ExecutionPhase.FAILED, ExecutionPhase.CANCELLED)]
    doomed = succeeded[:max(0, len(succeeded) - successful_limit)]
    doomed += failed[:max(0, len(failed) - failed_limit)]
    return sorted(doomed, key=lambda r: (r.scheduled or datetime.min.replace(tzinfo=UTC),
                                         r.name))


def scheduled_time_of(annotations: Mapping[str, str] | None) -> datetime | None:
    """The scheduled time a Schedule annotated its run with
    (:data:`SCHEDULED_TIME_ANNOTATION`, RFC 3339), as an aware datetime; None when absent
    or unreadable (an Execution not created by a Schedule, or a hand-edited annotation).
    Passed to ``Engine.submit`` as the run's ``execution.scheduledTime``."""
    text = (annotations or {}).get(SCHEDULED_TIME_ANNOTATION)
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo is not None else None
