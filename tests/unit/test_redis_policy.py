"""Which Redis maxmemory-policy values may evict Conveyor's keys (pure table)."""

from __future__ import annotations

import pytest

from conveyor_engine.redis_policy import UNKNOWN, eviction_risk, gauge_value


@pytest.mark.parametrize(("policy", "risk", "gauge"), [
    ("noeviction", None, 1),
    ("volatile-lru", "TTL", 0),
    ("volatile-lfu", "TTL", 0),
    ("volatile-random", "TTL", 0),
    ("volatile-ttl", "TTL", 0),
    ("allkeys-lru", "streams", 0),
    ("allkeys-lfu", "streams", 0),
    ("allkeys-random", "streams", 0),
    # a policy a future Redis adds counts as evicting until someone says otherwise
    ("someday-lru", "not noeviction", 0),
    (UNKNOWN, "not noeviction", -1),
])
def test_eviction_risk(policy: str, risk: str | None, gauge: int) -> None:
    found = eviction_risk(policy)
    assert (found is None) if risk is None else (risk in (found or ""))
    assert gauge_value(policy) == gauge
