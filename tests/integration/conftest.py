"""Fixtures for integration tests: an :class:`Engine` client and real worker processes."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import pytest_asyncio

from conveyor_engine.api import Engine
from tests.support.workers import WorkerProcess, worker_env

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(redis_url: str, database_url: str, key_prefix: str) -> AsyncIterator[Engine]:
    """An engine client on this session's database and key prefix (migrations applied)."""
    client = await Engine.connect(
        redis_url=redis_url, database_url=database_url, key_prefix=key_prefix)
    yield client
    await client.close()


@pytest.fixture
def pool() -> str:
    """A pool name unique to the test, so its workers see only its own tasks."""
    return f"p-{secrets.token_hex(4)}"


@pytest.fixture
def start_workers(
    engine: Engine, redis_url: str, database_url: str, key_prefix: str, pool: str
) -> Iterator[Callable[..., list[WorkerProcess]]]:
    """``start_workers(n, **settings)`` starts ``n`` worker processes on the test's pool.

    Settings are ``CONVEYOR_*`` names without the prefix, e.g. ``concurrency=4``. Every
    worker is stopped at the end of the test; a worker log is printed when a test fails.
    """
    started: list[WorkerProcess] = []

    def start(n: int = 1, **settings: object) -> list[WorkerProcess]:
        chosen = {"pool": pool, **{k: str(v) for k, v in settings.items()}}
        env = worker_env(redis_url=redis_url, database_url=database_url,
                         key_prefix=key_prefix, **chosen)
        batch = [WorkerProcess(env, f"w{len(started) + i}") for i in range(n)]
        started.extend(batch)
        for worker in batch:
            worker.wait_serving()
        return batch

    yield start
    for worker in started:
        worker.terminate()
        print(f"--- {worker.log_path}\n{worker.log()[-3000:]}")
