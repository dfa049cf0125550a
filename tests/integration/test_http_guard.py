"""The http task grown up (issue 11 item 5), end to end: real worker processes, real
loopback servers. Auth and Idempotency-Key headers arrive; a 429's HTTP-date Retry-After
delays the next attempt; the egress guard refuses metadata addresses and a pool's
``deny`` ranges, at the first request and at a redirect hop, without retry."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from conveyor_engine.api import Engine
from tests.support.header_http import header_server
from tests.support.runs import finished

pytestmark = pytest.mark.integration

RETRY = {"limit": 3, "backoff": "50ms", "jitter": "None"}




async def test_auth_and_idempotency_key_arrive_and_429_retry_after_date_is_honoured(
        engine: Engine, start_workers, pool: str) -> None:
    """The first POST gets 429 with an HTTP-date Retry-After 3 s ahead; the retry comes no
    sooner (the date has 1 s resolution, hence >= 2 s) and carries the same key."""
    def retry_at() -> str:
        return formatdate(time.time() + 3, usegmt=True)

    script = {"/charge": [(429, {"Retry-After": retry_at}), (200, {})]}
    with header_server(script) as (base, seen):
        workflow = await engine.register("http-grown-up", {"pool": pool, "tasks": [
            {"name": "charge", "type": "http",
             "params": {"url": f"{base}/charge", "method": "POST", "json": {"amount": 5},
                        "auth": {"bearer": "tok-123"}},
             "retry": {**RETRY, "maxBackoff": "10s"}},
            {"name": "basic", "type": "http",
             "params": {"url": f"{base}/basic", "idempotencyKey": False,
                        "auth": {"basic": {"username": "Aladdin", "password": "open sesame"}}}},
        ]})
        start_workers(1, dispatch_interval_seconds=0.05)
        state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Succeeded", state
    charges = [r for r in seen if r.path == "/charge"]
    assert len(charges) == 2
    key = f'"{state.execution_id}/charge"'
    assert [(r.headers["authorization"], r.headers["idempotency-key"]) for r in charges] == [
        ("Bearer tok-123", key)] * 2
    assert charges[1].arrived - charges[0].arrived >= 2.0
    (basic,) = [r for r in seen if r.path == "/basic"]
    assert basic.headers["authorization"] == "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
    assert "idempotency-key" not in basic.headers


async def test_metadata_addresses_are_refused_directly_and_at_a_redirect_hop(
        engine: Engine, start_workers, pool: str) -> None:
    script = {"/to-metadata": [(302, {"Location": "http://169.254.169.254/latest/meta-data/"})],
              "/to-imds6": [(307, {"Location": "http://[fd00:ec2::254]/latest/"})]}
    with header_server(script) as (base, seen):
        workflow = await engine.register("guarded", {"pool": pool, "tasks": [
            {"name": "direct", "type": "http",
             "params": {"url": "http://169.254.169.254/latest/meta-data/"}, "retry": RETRY},
            {"name": "hop", "type": "http", "params": {"url": f"{base}/to-metadata"},
             "retry": RETRY},
            {"name": "hop6", "type": "http", "params": {"url": f"{base}/to-imds6"},
             "retry": RETRY}]})
        start_workers(1, dispatch_interval_seconds=0.05)
        state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.phase == "Failed"
    for name, host in (("direct", "169.254.169.254:80"), ("hop", "169.254.169.254:80"),
                       ("hop6", "[fd00:ec2::254]:80")):
        task = state.task(name)
        assert (task.phase, task.attempt) == ("Failed", 1), task  # never retried
        assert f"egress to {host}" in task.message and "(not retryable)" in task.message
        assert task.error is not None and "spec.egress.allow" in task.error
    assert sorted(r.path for r in seen) == ["/to-imds6", "/to-metadata"]  # one request each


async def test_a_pools_deny_range_refuses_a_local_server_also_behind_a_redirect(
        engine: Engine, start_workers, pool: str) -> None:
    """Deny 127.0.0.1/32: the server there is refused directly and when 127.0.0.2 (allowed)
    redirects to it; it never sees a request, while 127.0.0.2 does."""
    with header_server() as (denied_base, denied_seen), header_server(
            {"/hop": [(302, {"Location": f"{denied_base}/target"})]}, host="127.0.0.2",
    ) as (allowed_base, allowed_seen):
        workflow = await engine.register("denied", {"pool": pool, "tasks": [
            {"name": "direct", "type": "http", "params": {"url": f"{denied_base}/x"},
             "retry": RETRY},
            {"name": "hop", "type": "http", "params": {"url": f"{allowed_base}/hop"},
             "retry": RETRY},
            {"name": "fine", "type": "http", "params": {"url": f"{allowed_base}/ok"}}]})
        start_workers(1, dispatch_interval_seconds=0.05, egress_deny="127.0.0.1/32")
        state = await finished(engine, (await engine.submit(workflow)).execution_id)
    assert state.task("fine").phase == "Succeeded"
    for name in ("direct", "hop"):
        task = state.task(name)
        assert (task.phase, task.attempt) == ("Failed", 1), task
        assert "refused by spec.egress.deny 127.0.0.1/32" in task.message
        assert task.error is not None
        assert "remove it from the WorkerPool's spec.egress.deny" in task.error
    assert denied_seen == []
    assert sorted(r.path for r in allowed_seen) == ["/hop", "/ok"]


#: Numeric spellings of 169.254.169.254 that resolvers read as that address (the octal
#: dotted-quad ``0251.0376.0251.0376`` is refused by httpx's URL parser already, so no
#: request can carry it; the unit table covers its reading).
METADATA_SPELLINGS = ("2852039166", "0xa9fea9fe", "169.254.43518", "0xa9.0xfe.0xa9fe",
                      "169.254.169.254.")


async def test_numeric_metadata_spellings_are_refused_before_reaching_a_proxy(
        engine: Engine, redis_url: str, database_url: str, key_prefix: str,
        pool: str) -> None:
    """Through HTTP_PROXY the proxy would resolve a host name; every numeric spelling of
    the metadata address is read as the address and refused before any request is sent,
    while a named target does go through the proxy (proving the proxy is in use)."""
    from tests.support.workers import WorkerProcess, worker_env

    with header_server() as (proxy, seen):
        tasks = [{"name": f"n{i}", "type": "http", "retry": RETRY,
                  "params": {"url": f"http://{host}/latest/meta-data/"}}
                 for i, host in enumerate(METADATA_SPELLINGS)]
        tasks.append({"name": "named", "type": "http",
                      "params": {"url": "http://upstream.conveyor.test/ok"}})
        workflow = await engine.register("proxied", {"pool": pool, "tasks": tasks})
        env = worker_env(redis_url=redis_url, database_url=database_url,
                         key_prefix=key_prefix, pool=pool, dispatch_interval_seconds="0.05")
        for name in ("HTTP_PROXY", "http_proxy"):
            env[name] = proxy
        for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
            env[name] = ""
        worker = WorkerProcess(env, "proxied")
        try:
            worker.wait_serving()
            state = await finished(engine, (await engine.submit(workflow)).execution_id)
        finally:
            worker.terminate()
    assert state.task("named").phase == "Succeeded", state.task("named")
    for i, host in enumerate(METADATA_SPELLINGS):
        task = state.task(f"n{i}")
        assert (task.phase, task.attempt) == ("Failed", 1), task
        assert f"egress to {host}:80 (address 169.254.169.254) refused" in task.message
    assert [r.path for r in seen] == ["http://upstream.conveyor.test/ok"]
