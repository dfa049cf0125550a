"""End to end: the operator's /healthz fails when its watches stall (the API server stops
answering them) and passes while they deliver, so a kubelet restarts a zombie operator."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from conveyor_sandbox import services
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.support.polling import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def healthz(session: aiohttp.ClientSession, port: int) -> tuple[int, str]:
    try:
        async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
            return response.status, await response.text()
    except aiohttp.ClientError as exc:
        return 0, str(exc)


async def test_healthz_fails_while_a_watch_is_stalled_and_recovers_after(
    redis_url: str, postgres_server_url: str, tmp_path: Path
) -> None:
    port = services.find_free_port()
    env = {"CONVEYOR_HEALTH_PORT": str(port), "CONVEYOR_WATCH_TIMEOUT_SECONDS": "2",
           "CONVEYOR_WATCH_STALL_SECONDS": "6"}
    async with services.fresh_database(postgres_server_url, "conveyor_live") as database, \
            aiohttp.ClientSession() as session:
        config = SandboxConfig(workdir=tmp_path / "sandbox", redis_url=redis_url,
                               database_url=database, workers=1, operator_env=env)
        async with Sandbox(config) as sandbox:
            api = sandbox.api

            def watches() -> int:
                return sum(1 for r in api.requests
                           if r.verb == "watch" and r.resource == "executions")

            # Healthy: /healthz answers 200 across several watch timeouts (each 2 s, longer
            # in all than the 6 s threshold), every time it is asked.
            seen = watches()
            answers: list[tuple[int, str]] = []

            async def probe_until_rewatched() -> int:
                answers.append(await healthz(session, port))
                return watches() - seen

            await eventually(probe_until_rewatched, until=lambda n: n >= 4, timeout=30,
                             interval=0.2, what="four more watches of Executions")
            assert {status for status, _ in answers} == {200}, answers[-3:]

            # The API server stops answering lists and watches of Executions: once the open
            # watch ends (2 s) nothing arrives, and after 6 s /healthz fails.
            stalled = api.stall("*", "conveyor.dev", "*", "executions")
            _, text = await eventually(lambda: healthz(session, port),
                                       until=lambda a: a[0] == 503, timeout=30,
                                       interval=0.2, what="/healthz to fail")
            assert "watch stalled: executions silent for" in text, text
            api.unreact(stalled)
            await eventually(lambda: healthz(session, port), until=lambda a: a[0] == 200,
                             timeout=30, interval=0.2, what="/healthz to pass again")
