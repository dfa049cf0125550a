"""Redis's maxmemory-policy checked at start (issue 9, item 8), against private redis-servers.

Never the shared Redis on 6379: each test starts its own server and changes its policy.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.request
from collections.abc import Iterator

import pytest
import redis

from conveyor_engine import redis_policy
from conveyor_engine.api import Engine
from conveyor_sandbox import services
from tests.support.polling import eventually
from tests.support.workers import WorkerProcess, worker_env

pytestmark = pytest.mark.integration


@pytest.fixture
def private_redis() -> Iterator[str]:
    """A private redis-server for this test only (its policy may be changed freely)."""
    with services.local_redis_server() as url:
        yield url


def _metrics(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        return answer.read().decode()


@pytest.mark.parametrize(("policy", "gauge", "warned"), [
    ("allkeys-lru", "0.0", True),
    ("volatile-lru", "0.0", True),
    ("noeviction", "1.0", False),
])
async def test_worker_checks_maxmemory_policy_at_start(
    private_redis: str, database_url: str, key_prefix: str, pool: str,
    policy: str, gauge: str, warned: bool,
) -> None:
    """Before: the engine never looked at maxmemory-policy; under allkeys-lru it lost its
    streams and groups and recovered only through noisy errors."""
    client = redis.Redis.from_url(private_redis)
    client.config_set("maxmemory-policy", policy)
    client.close()
    port = services.find_free_port()
    env = worker_env(redis_url=private_redis, database_url=database_url,
                     key_prefix=key_prefix, pool=pool, metrics_port=port)
    worker = WorkerProcess(env, f"policy-{policy}")
    try:
        worker.wait_serving()
        line = f"maxmemory-policy of the dispatch Redis is '{policy}'"
        assert (line in worker.log()) is warned, worker.tail()
        if warned:
            assert f"WARNING conveyor_engine.redis_policy: {line}" in worker.log()
        text = await eventually(lambda: asyncio.to_thread(_metrics, port),
                                until=lambda t: "conveyor_redis_eviction_policy_ok{" in t,
                                what="the policy gauge")
        assert f'conveyor_redis_eviction_policy_ok{{policy="{policy}"}} {gauge}' in text
    finally:
        worker.terminate()


async def test_forbidden_config_is_reported_as_unchecked(
    private_redis: str, database_url: str, key_prefix: str,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Managed Redis often renames or forbids CONFIG: the engine warns that it could not
    check, exports -1, and connects anyway (the operator's path, ``Engine.connect``)."""
    admin = redis.Redis.from_url(private_redis)
    admin.acl_setuser("limited", enabled=True, passwords=["+pw"], keys=["*"], channels=["*"],
                      commands=["+@all", "-config"])
    admin.close()
    monkeypatch.setattr(redis_policy, "_reported", set())
    limited_url = private_redis.replace("redis://", "redis://limited:pw@")
    with caplog.at_level(logging.WARNING, logger="conveyor_engine.redis_policy"):
        engine = await Engine.connect(redis_url=limited_url, database_url=database_url,
                                      key_prefix=key_prefix)
    try:
        assert "could not check maxmemory-policy of the engine's Redis" in caplog.text
        assert "NoPermissionError" in caplog.text
        assert redis_policy.REDIS_EVICTION_POLICY_OK.labels("unknown")._value.get() == -1
    finally:
        await engine.close()


async def test_engine_connect_warns_once_about_an_evicting_policy(
    private_redis: str, database_url: str, key_prefix: str,
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = redis.Redis.from_url(private_redis)
    admin.config_set("maxmemory-policy", "allkeys-lfu")
    admin.close()
    monkeypatch.setattr(redis_policy, "_reported", set())
    with caplog.at_level(logging.WARNING, logger="conveyor_engine.redis_policy"):
        for _ in range(2):
            engine = await Engine.connect(redis_url=private_redis, database_url=database_url,
                                          key_prefix=key_prefix)
            await engine.close()
    assert caplog.text.count("maxmemory-policy of the engine's Redis is 'allkeys-lfu'") == 1
    assert redis_policy.REDIS_EVICTION_POLICY_OK.labels("allkeys-lfu")._value.get() == 0
