"""Catalogue entries carry the names of the Secrets a worker mounts (never values): the
stored JSON, an older worker's bare list, and the names every live worker shares."""

from __future__ import annotations

import orjson
import pytest

from conveyor_engine.catalogue import PoolCatalogue, _parse, catalogue_json, common_secrets

SET = {"name": "set", "paramsSchema": {"type": "object"}, "package": "conveyor",
       "version": "0.1.0"}


def test_the_stored_json_holds_types_and_secret_names() -> None:
    raw = catalogue_json([SET], ["payments", "billing", "payments"])
    assert orjson.loads(raw) == {"types": [SET], "secrets": ["billing", "payments"]}
    types, secrets = _parse(raw)
    assert [t.name for t in types] == ["set"] and secrets == {"billing", "payments"}


@pytest.mark.parametrize(("raw", "names", "secrets"), [
    (orjson.dumps([SET]), ["set"], None),                 # an older worker: says nothing
    (orjson.dumps({"types": [SET]}), ["set"], None),
    (b"not json", [], frozenset()),
    (None, [], frozenset()),
])
def test_other_entries_parse_leniently(raw, names, secrets) -> None:
    types, found = _parse(raw)
    assert [t.name for t in types] == names and found == secrets


@pytest.mark.parametrize(("advertised", "expected"), [
    ([], frozenset()),
    ([frozenset({"a", "b"})], {"a", "b"}),
    ([frozenset({"a", "b"}), frozenset({"b"})], {"b"}),   # a rollout: one pod lacks "a"
    ([frozenset({"a"}), None], None),                     # an older worker did not say
])
def test_common_secrets_are_those_every_live_worker_mounts(advertised, expected) -> None:
    assert common_secrets(advertised) == expected


def test_facts_use_live_workers_secrets_else_the_last_known() -> None:
    live = PoolCatalogue("p", 1, (), (), frozenset({"a"}), frozenset({"a", "b"}))
    assert live.facts(settled=True, secrets=["a", "b"]).mounted == {"a"}
    idle = PoolCatalogue("p", 0, (), (), frozenset(), frozenset({"a", "b"}))
    assert idle.facts(settled=False, secrets=["a"]).mounted == {"a", "b"}
