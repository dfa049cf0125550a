"""Fixtures of the chart tests.

- ``apiserver``, ``kubeconfig``, ``kubectl``: the per-test emulated API server of tests/e2e,
  reused to apply rendered manifests.
- ``chart_sandbox``: one whole sandbox (API emulation, real operator, real workers) for the
  session, on the session's Redis and a fresh database; the RBAC and GitOps tests drive it.
- ``sandbox_kubectl``: kubectl bound to that sandbox.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from conveyor_sandbox import services
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.e2e.conftest import apiserver, kubeconfig, kubectl  # noqa: F401  (fixtures)
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import print_logs


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chart_sandbox(
    redis_url: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Sandbox]:
    workdir = tmp_path_factory.mktemp("chart-sandbox")
    async with services.fresh_database(postgres_server_url, "conveyor_chart") as database:
        # The GitOps example calls its cluster's httpbin Service by its cluster DNS name.
        config = SandboxConfig(workdir=workdir, redis_url=redis_url, database_url=database,
                               httpbin_hosts=("httpbin.conveyor.test",
                                              "httpbin.reports.svc.cluster.local"))
        async with Sandbox(config) as running:
            yield running
            print_logs(workdir)



@pytest.fixture(scope="session")
def sandbox_kubectl(chart_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    return Kubectl(chart_sandbox.kubeconfig, tmp_path_factory.mktemp("kubectl-cache"))
