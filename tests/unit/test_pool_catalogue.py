"""Whether a pool is settled, and its catalogue on status (issue 11 item 2), as tables."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from conveyor_operator.pools.catalogue import (
    MAX_NAMES_LENGTH,
    MAX_STATUS_TYPES,
    Rollout,
    settled,
    status_task_types,
)


def rollout(replicas: int, current: int | None = None, updated: int | None = None,
            ready: int | None = None, generation: int = 2, observed: int = 2) -> Rollout:
    current = replicas if current is None else current
    return Rollout(replicas, current, current if updated is None else updated,
                   replicas if ready is None else ready, generation, observed)


@pytest.mark.parametrize(
    ("deployment", "advertisers", "expected"),
    [
        (rollout(2), 2, True),                    # rolled out, all ready, all advertised
        (rollout(2), 3, True),                    # an old worker still advertising: fine
        (rollout(2, ready=1), 1, True),           # one not ready: the ready one advertised
        (rollout(2), 1, False),                   # a ready worker has not advertised yet
        (None, 0, False),                         # no Deployment
        (rollout(0), 0, False),                   # a pool at zero
        (rollout(2, ready=0), 0, False),          # workers starting
        (rollout(2, current=3, updated=2), 3, False),  # old pods still running
        (rollout(2, updated=1), 2, False),        # an image rolling out
        (rollout(2, observed=1), 2, False),       # the controller has not seen the spec yet
        (Rollout(1, 1, 1, 1), 1, True),           # no generations known (an old API)
    ],
)
def test_settled(deployment: Rollout | None, advertisers: int, expected: bool) -> None:
    assert settled(deployment, advertisers) is expected


@dataclass(frozen=True)
class Served:
    name: str
    package: str | None = None
    version: str | None = None


def test_status_task_types_sorted_with_providers() -> None:
    items, names = status_task_types([Served("word-count", "conveyor-example-tasks", "0.1.0"),
                                      Served("set", "conveyor", "0.1.0"), Served("coded")])
    assert items == [{"name": "coded"}, {"name": "set", "package": "conveyor", "version": "0.1.0"},
                     {"name": "word-count", "package": "conveyor-example-tasks",
                      "version": "0.1.0"}]
    assert names == "coded,set,word-count"


def test_status_task_types_are_bounded() -> None:
    items, names = status_task_types([Served(f"type-{i:03}-{'x' * 40}") for i in range(100)])
    assert len(items) == MAX_STATUS_TYPES
    assert len(names) <= MAX_NAMES_LENGTH and names.endswith(",...")
    assert names.startswith("type-000-")
