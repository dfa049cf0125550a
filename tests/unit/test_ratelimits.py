"""Rate limits: the GCRA arithmetic, declarations and their conflicts (tables)."""

from __future__ import annotations

import pytest

from conveyor_engine.compiler import WorkflowInvalid, compile_workflow
from conveyor_engine.model import RateLimitSpec
from conveyor_engine.ratelimits import (
    Rate,
    conflict_message,
    gcra,
    rate_of,
    same_limit,
    wait_message,
    window_allowance,
)

S = 1_000_000


def spec(**fields) -> RateLimitSpec:
    return RateLimitSpec.model_validate({"key": "api", **fields})


@pytest.mark.parametrize(("fields", "interval", "burst"), [
    ({"perSecond": 5}, S // 5, 5),
    ({"perSecond": 5, "burst": 1}, S // 5, 1),
    ({"perMinute": 60}, S, 1),
    ({"perMinute": 30}, 2 * S, 1),          # slower than 1/s: burst at least 1
    ({"perSecond": 0.5, "burst": 3}, 2 * S, 3),
])
def test_rate_of(fields, interval, burst) -> None:
    assert rate_of(spec(**fields)) == Rate(interval, burst)


FIVE = Rate(S // 5, 5)  # 5/s, burst 5


@pytest.mark.parametrize(("tat", "now", "rate", "units", "allowed", "new_tat", "wait"), [
    (None, 10 * S, FIVE, 1, True, 10 * S + S // 5, 0),      # first use
    (10 * S + 4 * S // 5, 10 * S, FIVE, 1, True, 11 * S, 0),  # the 5th of a burst
    (11 * S, 10 * S, FIVE, 1, False, 11 * S, S // 5),          # the 6th waits 0.2 s
    (10 * S + 6 * S // 5, 10 * S, FIVE, 1, False, 10 * S + 6 * S // 5, 2 * S // 5),
    (9 * S, 10 * S, FIVE, 5, True, 11 * S, 0),               # an old tat counts from now
    (10 * S + S // 5, 10 * S, FIVE, 5, False, 10 * S + S // 5, S // 5),
    (None, 0, Rate(S, 1), 1, True, S, 0),
    (S, 0, Rate(S, 1), 1, False, S, S),                      # 1/s, burst 1: wait a second
])
def test_gcra(tat, now, rate, units, allowed, new_tat, wait) -> None:
    decision = gcra(tat=tat, now=now, rate=rate, units=units)
    assert (decision.allowed, decision.tat, decision.wait_us) == (allowed, new_tat, wait)


def test_gcra_never_grants_more_than_the_window_allowance() -> None:
    granted, tat, now = [], None, 0
    while now < 10 * S:                 # a caller asking every 10 ms for 10 s
        decision = gcra(tat=tat, now=now, rate=FIVE, units=1)
        if decision.allowed:
            granted.append(now)
            tat = decision.tat
        now += S // 100
    assert window_allowance(FIVE, 1.0) == 10
    for start in range(0, 10 * S, S // 100):
        assert sum(start <= t < start + S for t in granted) <= window_allowance(FIVE, 1.0)
    assert 5 + 5 * 9 <= len(granted) <= 5 + 5 * 10   # burst, then the rate


@pytest.mark.parametrize("units", [0, 6])
def test_gcra_refuses_impossible_requests(units) -> None:
    with pytest.raises(ValueError, match="units"):
        gcra(tat=None, now=0, rate=FIVE, units=units)


def test_declarations() -> None:
    assert same_limit(spec(perSecond=1), spec(perMinute=60))
    assert not same_limit(spec(perSecond=1), spec(perSecond=1, burst=2))
    assert conflict_message(spec(perSecond=5), "a", spec(perSecond=1), "b") == (
        'key "api" is declared as 5/s, burst 5 here but as 1/s, burst 1 by workflow "b"; '
        "a rate limit is global: declare one limit per key (or use another key)")
    assert wait_message("api", 200_000) == "rate limit api: next token in 0.2s"
    with pytest.raises(ValueError, match="exactly one of perSecond and perMinute"):
        spec()
    with pytest.raises(ValueError, match="exactly one"):
        spec(perSecond=1, perMinute=1)


def test_compiler_checks_rate_limits() -> None:
    ok = compile_workflow("w", {
        "inputs": [{"name": "k", "default": "api"}],
        "rateLimits": [{"key": "api", "perSecond": 5}, {"key": "api", "perMinute": 300,
                                                         "burst": 5}],
        "tasks": [{"name": "a", "type": "set", "rateLimit": {"key": "${{ inputs.k }}"}}]})
    assert ok.tasks["a"].rate_key.render({"inputs": {"k": "api"}}) == "api"
    with pytest.raises(WorkflowInvalid) as caught:
        compile_workflow("w", {
            "rateLimits": [{"key": "api", "perSecond": 5}, {"key": "api", "perSecond": 1}],
            "tasks": [{"name": "a", "type": "set", "rateLimit": {"key": "bad key"}},
                      {"name": "b", "type": "set",
                       "rateLimit": {"key": "${{ inputs.nope }}"}}]})
    text = str(caught.value)
    assert ('rateLimits[1]: key "api" is declared twice with different limits: rateLimits[0] '
            "(5/s, burst 5) and rateLimits[1] (1/s, burst 1)") in text
    assert "task \"a\": rateLimit.key: 'bad key' is not a valid name" in text
    assert 'task "b": rateLimit.key: expression refers to input "nope"' in text
    with pytest.raises(WorkflowInvalid, match=r'rateLimit\.units: 9 units can never be granted'):
        compile_workflow("w", {"rateLimits": [{"key": "api", "perSecond": 5}], "tasks": [
            {"name": "a", "type": "set", "rateLimit": {"key": "api", "units": 9}}]})
