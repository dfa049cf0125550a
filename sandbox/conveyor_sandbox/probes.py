"""Readiness probes as a kubelet runs them, for the sandbox's kubelet emulation (pure).

The rules and defaults are Kubernetes' own (API reference, core/v1 ``Probe`` and
``HTTPGetAction``; docs, "Configure Liveness, Readiness and Startup Probes"):

* defaults: ``initialDelaySeconds`` 0, ``periodSeconds`` 10, ``timeoutSeconds`` 1,
  ``successThreshold`` 1, ``failureThreshold`` 3;
* an HTTP probe succeeds when the answer's status is at least 200 and below 400; a refused
  connection, a timeout or any other status is a failure;
* a container with a readiness probe is not ready until the probe has succeeded; after
  ``failureThreshold`` failures in a row it is not ready, after ``successThreshold``
  successes in a row it is ready again;
* ``httpGet.port`` is a number or the name of one of the container's ``ports``.

Only ``httpGet`` probes are modelled (the only kind Conveyor's Deployments use); a container
without one is judged by the kubelet by other means (see :mod:`.kubelet`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class HttpProbe:
    """A container's ``readinessProbe.httpGet`` with Kubernetes' defaults filled in.

    ``port`` is the container's port (a number, names already resolved); times in seconds.
    """

    path: str
    port: int
    initial_delay: float = 0.0
    period: float = 10.0
    timeout: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3


@dataclass(frozen=True, slots=True)
class ProbeState:
    """Where a container stands with its probe: ready or not, and the current run of
    successes or failures (only one of the two is non-zero)."""

    ready: bool = False
    successes: int = 0
    failures: int = 0


def readiness_probe(container: dict[str, Any]) -> HttpProbe | None:
    """The container's HTTP readiness probe, or None when it has none (or one of another
    kind: ``exec``, ``tcpSocket``, ``grpc``).

    A named ``port`` is looked up in the container's ``ports``; a name that is not there
    gives port 0, which nothing serves, so the probe fails (as it would on a cluster, where
    the kubelet reports the unknown port and the container never becomes ready).
    """
    probe = container.get("readinessProbe") or {}
    action = probe.get("httpGet")
    if not isinstance(action, dict):
        return None
    port = action.get("port", 0)
    if isinstance(port, str) and not port.isdigit():
        named = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
        port = named.get(port) or 0
    return HttpProbe(
        path=str(action.get("path") or "/"),
        port=int(port),
        initial_delay=float(probe.get("initialDelaySeconds", 0)),
        period=float(probe.get("periodSeconds", 10)),
        timeout=float(probe.get("timeoutSeconds", 1)),
        success_threshold=int(probe.get("successThreshold", 1)),
        failure_threshold=int(probe.get("failureThreshold", 3)),
    )


def http_success(status: int) -> bool:
    """Whether an HTTP probe's answer counts as a success: 200 <= status < 400."""
    return 200 <= status < 400


def after_probe(state: ProbeState, ok: bool, probe: HttpProbe) -> ProbeState:
    """The state after one probe result ``ok``.

    Readiness turns True after ``success_threshold`` successes in a row and False after
    ``failure_threshold`` failures in a row; in between it keeps its value.
    """
    if ok:
        state = replace(state, successes=state.successes + 1, failures=0)
        if state.successes >= probe.success_threshold:
            state = replace(state, ready=True)
    else:
        state = replace(state, failures=state.failures + 1, successes=0)
        if state.failures >= probe.failure_threshold:
            state = replace(state, ready=False)
    return state
