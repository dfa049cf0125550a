"""Fixtures of the sandbox end-to-end tests: one sandbox (API emulation, operator, worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from conveyor_engine.api import Engine
from conveyor_sandbox import services
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.e2e.fakeclock import FakeClock
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import print_logs


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sandbox(
    redis_url: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Sandbox]:
    """The whole sandbox on this session's Redis and a fresh database; logs in a temp dir."""
    workdir = tmp_path_factory.mktemp("sandbox")
    async with services.fresh_database(postgres_server_url, "conveyor_e2e") as database:
        # A long fallback period: pools must scale on the change stream's push alone.
        config = SandboxConfig(workdir=workdir, redis_url=redis_url, database_url=database,
                               workers=1,
                               operator_env={"CONVEYOR_POOL_CHECK_SECONDS": "60"})
        async with Sandbox(config) as running:
            yield running
            print_logs(Path(workdir))



@pytest.fixture(scope="session")
def kubectl(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl with the sandbox's kubeconfig (overrides the per-test one of tests/e2e)."""
    return Kubectl(sandbox.kubeconfig, tmp_path_factory.mktemp("kubectl-cache"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def sandbox_engine(sandbox: Sandbox) -> AsyncIterator[Engine]:
    """An engine client on the sandbox's database and key prefix, for assertions."""
    engine = await Engine.connect(redis_url=sandbox.redis_url,
                                  database_url=sandbox.database_url,
                                  key_prefix=sandbox.key_prefix)
    yield engine
    await engine.close()


#: Leader election of the clock sandbox's operator: short, so a killed operator is back soon.
QUICK_LEASE = {"CONVEYOR_LEASE_DURATION_SECONDS": "3", "CONVEYOR_RENEW_DEADLINE_SECONDS": "2",
               "CONVEYOR_RETRY_PERIOD_SECONDS": "0.5"}


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def clock_sandbox(
    redis_url: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[tuple[Sandbox, FakeClock]]:
    """A sandbox whose operator takes the time Schedules see from a :class:`FakeClock`
    (``CONVEYOR_CLOCK_FILE``), frozen at 2025-01-01 until a test sets it. One per module:
    tests in it share the clock, so each deletes its Schedules when done."""
    workdir = tmp_path_factory.mktemp("clock-sandbox")
    clock = FakeClock(workdir / "clock.json")
    clock.set(datetime(2025, 1, 1, tzinfo=UTC), speed=0)
    async with services.fresh_database(postgres_server_url, "conveyor_e2e_clock") as database:
        config = SandboxConfig(workdir=workdir, redis_url=redis_url, database_url=database,
                               workers=1, operator_env={"CONVEYOR_CLOCK_FILE": str(clock.path),
                                                        **QUICK_LEASE})
        async with Sandbox(config) as running:
            yield running, clock
            print_logs(Path(workdir))
