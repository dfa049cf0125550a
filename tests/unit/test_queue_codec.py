"""Stream entry encoding and key naming (pure)."""

from __future__ import annotations

import pytest

from conveyor_engine.keys import Keys
from conveyor_engine.queue import decode, encode
from conveyor_engine.store import TaskRef


def test_entry_round_trip() -> None:
    ref = TaskRef("0b6c7a4e-1f1e-4a8e-9d8e-3c7a1b2c3d4e", "fetch-user", 3)
    assert decode("1-0", encode(ref)).ref == ref


@pytest.mark.parametrize("fields", [{}, {"e": "x", "t": "y"}, {"e": "x", "t": "y", "a": "z"}])
def test_malformed_entries_raise(fields: dict[str, str]) -> None:
    with pytest.raises((KeyError, ValueError)):
        decode("1-0", fields)


def test_every_key_carries_the_prefix() -> None:
    keys = Keys("inst-a")
    names = [keys.stream("p"), keys.dead_letter("p"), keys.workflow("sha256:1"),
             keys.execution("e"), keys.outputs("e"), keys.events(), keys.control(),
             keys.dispatcher_lock("p")]
    assert all(n.startswith("inst-a:") for n in names)
    assert len(set(names)) == len(names)
