"""The sandbox kubelet's readiness probes (pure), as tables: the probe read from a container
with Kubernetes' defaults, what counts as success, and readiness after runs of results."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_operator.pools.deployment import Connection, worker_deployment
from conveyor_operator.resources import WorkerPoolSpec
from conveyor_sandbox.probes import (
    HttpProbe,
    ProbeState,
    after_probe,
    http_success,
    readiness_probe,
)

PORTS = [{"name": "metrics", "containerPort": 9090}]


@pytest.mark.parametrize(("container", "expected"), [
    pytest.param({"readinessProbe": {"httpGet": {"path": "/readyz", "port": 9090}}},
                 HttpProbe("/readyz", 9090), id="defaults"),
    pytest.param({"ports": PORTS, "readinessProbe": {
        "httpGet": {"path": "/readyz", "port": "metrics"}, "periodSeconds": 5,
        "timeoutSeconds": 2, "successThreshold": 2, "failureThreshold": 4,
        "initialDelaySeconds": 3}},
                 HttpProbe("/readyz", 9090, 3.0, 5.0, 2.0, 2, 4), id="named-port-and-all-set"),
    pytest.param({"ports": PORTS, "readinessProbe": {"httpGet": {"port": "http"}}},
                 HttpProbe("/", 0), id="unknown-port-name-probes-nothing"),
    pytest.param({"readinessProbe": {"httpGet": {"path": "/x", "port": "8080"}}},
                 HttpProbe("/x", 8080), id="port-as-digits"),
    pytest.param({"readinessProbe": {"exec": {"command": ["true"]}}}, None, id="exec"),
    pytest.param({}, None, id="none"),
])
def test_readiness_probe(container: dict[str, Any], expected: HttpProbe | None) -> None:
    assert readiness_probe(container) == expected


def test_a_pools_worker_container_has_a_readiness_probe_on_its_readyz() -> None:
    deployment = worker_deployment(pool="p", uid="u", spec=WorkerPoolSpec(), namespace="n",
                                   image="img", replicas=1, connection=Connection("t"))
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    probe = readiness_probe(container)
    assert probe is not None and probe.path == "/readyz"
    assert probe.port == int(env["CONVEYOR_METRICS_PORT"])  # the port the worker serves


@pytest.mark.parametrize(("status", "ok"), [
    (199, False), (200, True), (204, True), (302, True), (399, True), (400, False),
    (503, False),
])
def test_http_success(status: int, ok: bool) -> None:
    assert http_success(status) is ok


PROBE = HttpProbe("/readyz", 9090, period=5, success_threshold=1, failure_threshold=3)
TWO_UP = HttpProbe("/readyz", 9090, period=5, success_threshold=2, failure_threshold=1)


@pytest.mark.parametrize(("probe", "results", "readiness"), [
    pytest.param(PROBE, [False, False, False, False], [False] * 4,
                 id="never-ready-before-a-success"),
    pytest.param(PROBE, [True], [True], id="one-success-makes-ready"),
    pytest.param(PROBE, [True, False, False, False], [True, True, True, False],
                 id="ready-until-three-failures-in-a-row"),
    pytest.param(PROBE, [True, False, False, True, False, False], [True] * 6,
                 id="a-success-resets-the-failures"),
    pytest.param(PROBE, [True, False, False, False, True], [True, True, True, False, True],
                 id="ready-again-after-one-success"),
    pytest.param(TWO_UP, [True, True, False, True, True], [False, True, False, False, True],
                 id="thresholds-from-the-probe"),
])
def test_readiness_after_results(probe: HttpProbe, results: list[bool],
                                 readiness: list[bool]) -> None:
    state = ProbeState()
    seen = []
    for ok in results:
        state = after_probe(state, ok, probe)
        seen.append(state.ready)
    assert seen == readiness
