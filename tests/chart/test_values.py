"""A wrong value is refused at install time with a message that names it.

Types, ranges, enums and unknown keys are refused by values.schema.json (``helm install``
checks it before rendering); rules across values fail in the templates (conveyor.validate).
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.chart.helmchart import render_raw

REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "negative-replicas": ({"defaultPool": {"minReplicas": -1}},
                          "at '/defaultPool/minReplicas': minimum: got -1, want 0"),
    "unknown-pull-policy": ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy'"),
    "no-operator": ({"operator": {"replicas": 0}},
                    "at '/operator/replicas': minimum: got 0, want 1"),
    # Two reconcilers must never run at once: more than one replica needs the Lease.
    "replicas-without-election": (
        {"operator": {"replicas": 2, "extraEnv": [{"name": "CONVEYOR_LEADER_ELECTION",
                                                   "value": "false"}]}},
        "operator.replicas=2 needs leader election, but operator.extraEnv sets "
        "CONVEYOR_LEADER_ELECTION=false"),
    "misspelt-key": ({"defaultpool": {"enabled": False}},
                     "additional properties 'defaultpool' not allowed"),
    "short-digest": ({"image": {"digest": "sha256:abc"}}, "at '/image/digest'"),
    "port-as-text": ({"redis": {"port": "six"}}, "at '/redis/port': got string, want integer"),
    "bad-sslmode": ({"postgresql": {"sslMode": "sometimes"}}, "at '/postgresql/sslMode'"),
    "unpinned-evaluation-image": ({"evaluation": {"redis": {"image": "redis@sha256:1"}}},
                                  "at '/evaluation/redis/image'"),
    "bad-namespace": ({"operator": {"watchNamespace": "Team_A"}},
                      "at '/operator/watchNamespace'"),
    "no-redis": ({"redis": {"existingSecret": ""}},
                 "conveyor: no Redis configured. Set redis.existingSecret"),
    "no-postgresql": ({"postgresql": {"urlKey": ""}},
                      "conveyor: no PostgreSQL configured. Set postgresql.existingSecret"),
    "min-above-max": ({"defaultPool": {"minReplicas": 5, "maxReplicas": 2}},
                      "defaultPool.minReplicas (5) must not exceed defaultPool.maxReplicas (2)"),
    "system-namespace": ({"operator": {"watchNamespace": "kube-system"}},
                         "operator.watchNamespace=kube-system is a system namespace"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_wrong_value_is_refused_with_a_clear_message(case: str) -> None:
    values, message = REFUSED[case]
    with pytest.raises(helm.HelmError) as caught:
        render_raw(values)
    assert message in str(caught.value), str(caught.value)
