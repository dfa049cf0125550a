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


def test_each_pools_keys_and_each_executions_keys_share_one_cluster_slot() -> None:
    """Redis Cluster hashes only the ``{tag}``: a pool's stream, dead letters and dispatcher
    lock land in one slot, as do an execution's header and outputs (Cluster spec, "Hash
    tags"); all keys keep the installation's prefix first."""
    from redis.crc import key_slot

    keys = Keys("inst")
    pool_keys = [keys.stream("p1"), keys.dead_letter("p1"), keys.dispatcher_lock("p1")]
    assert len({key_slot(k.encode()) for k in pool_keys}) == 1
    exec_keys = [keys.execution("e-1"), keys.outputs("e-1")]
    assert len({key_slot(k.encode()) for k in exec_keys}) == 1
    assert all(k.startswith("inst:") for k in pool_keys + exec_keys)
    assert keys.stream("p1") == "inst:{inst/pool/p1}:tasks"
