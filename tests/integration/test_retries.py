"""Retry policy end to end (issue 9): real worker processes calling a scripted loopback
server that counts requests, to check ``Retry-After`` and ``retryOn``."""

from __future__ import annotations

import pytest

from conveyor_engine.api import Engine
from tests.support.counting import counting_server
from tests.support.polling import eventually
from tests.support.runs import finished
from tests.support.scripted_http import scripted_server

pytestmark = pytest.mark.integration





async def test_retry_after_on_503_delays_the_next_attempt(
    engine: Engine, start_workers, pool: str
) -> None:
    """The server says 503 with ``Retry-After: 2``, then 200. The policy's own backoff is
    100 ms; the second request must still arrive no sooner than 2 s after the first."""
    script = {"/busy": [(503, {"Retry-After": "2"}), (200, {})],
              # a server asking for an hour gets maxBackoff (1s) at most
              "/parked": [(429, {"Retry-After": "3600"}), (200, {})]}
    with scripted_server(script) as (base, arrivals):
        workflow = await engine.register("retry-after", {"pool": pool, "tasks": [
            {"name": "busy", "type": "http", "params": {"url": f"{base}/busy"},
             "retry": {"limit": 2, "backoff": "100ms", "maxBackoff": "10s"}},
            {"name": "parked", "type": "http", "params": {"url": f"{base}/parked"},
             "retry": {"limit": 2, "backoff": "100ms", "maxBackoff": "1s"}}]})
        start_workers(1, dispatch_interval_seconds=0.05)
        state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Succeeded", state
    assert [len(arrivals["/busy"]), len(arrivals["/parked"])] == [2, 2]
    busy_gap = arrivals["/busy"][1] - arrivals["/busy"][0]
    assert 2.0 <= busy_gap < 6.0, busy_gap
    parked_gap = arrivals["/parked"][1] - arrivals["/parked"][0]
    assert 1.0 <= parked_gap < 5.0, parked_gap  # capped at maxBackoff, not an hour
    attempts = [a for a in await engine.attempts(state.execution_id) if a.task == "busy"]
    assert [(a.attempt, a.outcome) for a in attempts] == [(1, "Failed"), (2, "Succeeded")]
    assert (attempts[1].started_at - attempts[0].finished_at).total_seconds() >= 1.9


async def test_retry_on_retries_only_the_listed_failures(
    engine: Engine, start_workers, pool: str
) -> None:
    """``retryOn: ["429"]``: a 429 is retried, a 500 (retryable by default) fails at once;
    ``retryOn: ["5xx"]`` does not make a 404 retryable; without ``retryOn`` a 500 is
    retried as before."""
    script = {"/limited": [(429, {}), (200, {})],
              "/broken": [(500, {})],
              "/missing": [(404, {})],
              "/default": [(500, {}), (200, {})]}
    retry = {"limit": 3, "backoff": "50ms"}
    with scripted_server(script) as (base, arrivals):
        workflow = await engine.register("retry-on", {"pool": pool, "tasks": [
            {"name": "limited", "type": "http", "params": {"url": f"{base}/limited"},
             "retry": {**retry, "retryOn": ["429"]}},
            {"name": "broken", "type": "http", "params": {"url": f"{base}/broken"},
             "retry": {**retry, "retryOn": ["429"]}},
            {"name": "missing", "type": "http", "params": {"url": f"{base}/missing"},
             "retry": {**retry, "retryOn": ["5xx", "4xx"]}},
            {"name": "default", "type": "http", "params": {"url": f"{base}/default"},
             "retry": retry}]})
        start_workers(1, dispatch_interval_seconds=0.05)
        state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Failed"
    assert state.task("limited").phase == "Succeeded"
    assert state.task("broken").phase == "Failed"
    assert "(not in retryOn)" in state.task("broken").message
    assert state.task("missing").phase == "Failed"
    assert "(not retryable)" in state.task("missing").message
    assert state.task("default").phase == "Succeeded"
    assert {path: len(times) for path, times in arrivals.items()} == {
        "/limited": 2, "/broken": 1, "/missing": 1, "/default": 2}


async def test_retry_on_decides_whether_a_lost_attempt_is_retried(
    engine: Engine, start_workers, pool: str
) -> None:
    """A worker killed (SIGKILL) mid-call loses both of its attempts: the task with
    ``retryOn: ["WorkerLost"]`` is retried on another worker, the one with
    ``retryOn: ["5xx"]`` fails at once with reason ``WorkerLost`` though retries are left."""
    with counting_server() as (base, hits):
        retry = {"limit": 2, "backoff": "100ms"}
        workflow = await engine.register("retry-on-lost", {"pool": pool, "tasks": [
            {"name": "strict", "type": "http", "params": {"url": f"{base}/slow/2/strict"},
             "retry": {**retry, "retryOn": ["5xx"]}},
            {"name": "tolerant", "type": "http", "params": {"url": f"{base}/slow/2/tolerant"},
             "retry": {**retry, "retryOn": ["WorkerLost"]}}]})
        (doomed,) = start_workers(1, lease_seconds=1.5, concurrency=4)
        submission = await engine.submit(workflow)
        await eventually(lambda: engine.get(submission.execution_id),
                         until=lambda s: all(s.task(n).phase == "Running"
                                             for n in ("strict", "tolerant")),
                         what="both tasks to be running")
        doomed.kill()  # no hand-back, no outcome: both attempts are lost
        start_workers(1, lease_seconds=1.5, dispatch_interval_seconds=0.05)
        state = await finished(engine, submission.execution_id)
    strict, tolerant = state.task("strict"), state.task("tolerant")
    assert (strict.phase, strict.reason, strict.attempt) == ("Failed", "WorkerLost", 1)
    assert "the last lost" in strict.message
    assert (tolerant.phase, tolerant.attempt) == ("Succeeded", 2)
    assert hits.get("/slow/2/strict", 0) <= 1  # never called again after the loss
