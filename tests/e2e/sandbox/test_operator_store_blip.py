"""End to end: a Workflow changed while its store (Redis) is down says so on status and
compiles within seconds of Redis coming back, not after kopf's default 60 s retry."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from conveyor_sandbox import services
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.conditions import ready_condition
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow,
              pytest.mark.skipif(shutil.which("redis-server") is None,
                                 reason="redis-server not on PATH")]


class RestartableRedis:
    """A private redis-server on a fixed loopback port that can be stopped and started."""

    def __init__(self, workdir: Path) -> None:
        self.port = services.find_free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis.from_url(self.url).ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def workflow(value: int) -> dict[str, Any]:
    return {"apiVersion": "conveyor.dev/v1alpha1", "kind": "Workflow",
            "metadata": {"name": "blip"},
            "spec": {"tasks": [{"name": "a", "type": "set", "params": {"v": value}}]}}


def ready(found: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    condition = ready_condition((found or {}).get("status"))
    return condition.get("status"), condition.get("reason"), condition.get("observedGeneration")


async def test_a_workflow_changed_during_a_redis_outage_compiles_soon_after_it_returns(
    postgres_server_url: str, tmp_path: Path
) -> None:
    store = RestartableRedis(tmp_path / "redis")
    store.start()
    try:
        async with services.fresh_database(postgres_server_url, "conveyor_blip") as database:
            config = SandboxConfig(workdir=tmp_path / "sandbox", redis_url=store.url,
                                   database_url=database, workers=1)
            async with Sandbox(config) as sandbox:
                await sandbox.apply_objects([workflow(1)])
                await eventually(lambda: sandbox.get("workflows", "blip"),
                                 until=lambda w: ready(w) == ("True", "Compiled", 1),
                                 timeout=30, what="generation 1 to compile")
                store.stop()
                await sandbox.apply_objects([workflow(2)])
                found = await eventually(
                    lambda: sandbox.get("workflows", "blip"),
                    until=lambda w: ready(w) == ("False", "StoreUnavailable", 2),
                    timeout=30, what="the workflow to say it waits for its store")
                assert "waiting for the store" in ready_condition(found["status"])["message"]
                assert found["status"].get("contentHash") is None  # not generation 1's
                store.start()
                back = time.monotonic()
                await eventually(lambda: sandbox.get("workflows", "blip"),
                                 until=lambda w: ready(w) == ("True", "Compiled", 2),
                                 timeout=40, interval=0.1, what="generation 2 to compile")
                took = time.monotonic() - back
                assert took < 10, f"compiled {took:.1f}s after Redis returned"
    finally:
        store.stop()
