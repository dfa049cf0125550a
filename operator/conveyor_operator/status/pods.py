"""Why a pool's workers do not run, from its pods' container statuses (pure).

A pod's ``status.containerStatuses[]`` names definite causes a kubelet found (Kubernetes
API reference, core/v1 ``ContainerStateWaiting``; kubelet's reasons): a container that
keeps exiting waits in ``CrashLoopBackOff`` (its ``lastState.terminated`` holds the exit
code and, by ``terminationMessagePolicy``, the end of its output), one whose Secret or
ConfigMap is missing in ``CreateContainerConfigError``, one whose image cannot be pulled in
``ErrImagePull`` / ``ImagePullBackOff`` (or ``InvalidImageName``), one the runtime cannot
create in ``CreateContainerError``. These need a person (a fix and a rollout), so the
WorkerPool's ``Degraded`` condition names the first such pod at once, without the delay it
gives workers that are merely not ready yet.

Input shape (as :meth:`..pools.workloads.Workloads.pods` reads it): one mapping per pod,
``{"name": str, "containers": [{"name": str, "image": str, "waiting": {"reason": str,
"message": str} | None, "last_terminated": {"exitCode": int, "reason": str, "message": str}
| None}]}``. Messages name no times and no counters, so an unchanged problem gives an
unchanged condition (no status write).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..reasons import ConditionReason

#: Waiting reasons that are a definite cause, most telling first (a pod showing several
#: is reported by the first).
DEFINITE_REASONS: tuple[ConditionReason, ...] = (
    ConditionReason.CREATE_CONTAINER_CONFIG_ERROR,
    ConditionReason.INVALID_IMAGE_NAME,
    ConditionReason.ERR_IMAGE_PULL,
    ConditionReason.IMAGE_PULL_BACK_OFF,
    ConditionReason.CREATE_CONTAINER_ERROR,
    ConditionReason.CRASH_LOOP_BACK_OFF,
)
_IMAGE_REASONS = frozenset({ConditionReason.INVALID_IMAGE_NAME, ConditionReason.ERR_IMAGE_PULL,
                            ConditionReason.IMAGE_PULL_BACK_OFF})
#: Longest part of a container's output quoted in a condition message (characters).
MAX_OUTPUT = 512
#: A Python logging prefix (``2025-01-01 10:00:00,123 ERROR name: ``) before a message;
#: dropped so the quoted line does not change with the time of each crash.
_LOG_PREFIX = re.compile(
    r"^\d{4}-\d\d-\d\d[ T][\d:.,]+Z? +(?:CRITICAL|ERROR|WARNING|INFO|DEBUG) +[\w.]+: ")


@dataclass(frozen=True, slots=True)
class PodTrouble:
    """A definite cause: the condition ``reason`` and a ``message`` naming the pod."""

    reason: ConditionReason
    message: str


def last_output_line(output: str) -> str:
    """The last non-empty line of a container's output, without a logging prefix, at most
    :data:`MAX_OUTPUT` characters (``...`` marks a cut)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return ""
    line = _LOG_PREFIX.sub("", lines[-1])
    return line if len(line) <= MAX_OUTPUT else line[: MAX_OUTPUT - 3] + "..."


def _describe(pod: str, reason: ConditionReason, container: Mapping[str, Any]) -> str:
    waiting = container.get("waiting") or {}
    said = str(waiting.get("message") or "").strip()
    if reason == ConditionReason.CRASH_LOOP_BACK_OFF:
        last = container.get("last_terminated") or {}
        if "exitCode" not in last:
            return f"pod {pod}: container {container.get('name')} keeps exiting"
        line = last_output_line(str(last.get("message") or ""))
        return f"pod {pod}: exit code {last['exitCode']}" + (f": {line}" if line else "")
    if reason in _IMAGE_REASONS:
        return f'pod {pod}: image "{container.get("image", "")}"' + (f": {said}" if said
                                                                      else "")
    return f"pod {pod}: {said or reason}"


def pod_trouble(pods: Sequence[Mapping[str, Any]]) -> PodTrouble | None:
    """The first definite cause among ``pods`` (by :data:`DEFINITE_REASONS`, then pod
    name), with how many other pods show one; None when no pod shows one."""
    found: list[tuple[int, str, ConditionReason, Mapping[str, Any]]] = []
    for pod in pods:
        for container in pod.get("containers") or []:
            reason = str((container.get("waiting") or {}).get("reason") or "")
            if reason in DEFINITE_REASONS:
                cause = ConditionReason(reason)
                found.append((DEFINITE_REASONS.index(cause), str(pod["name"]), cause,
                              container))
                break
    if not found:
        return None
    _, name, reason, container = min(found, key=lambda f: (f[0], f[1]))
    message = _describe(name, reason, container)
    if len(found) > 1:
        message += f" (and {len(found) - 1} other pod(s) not running)"
    return PodTrouble(reason, message)
