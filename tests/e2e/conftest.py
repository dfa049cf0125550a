"""Fixtures of end-to-end tests: an emulated Kubernetes API server and clients for it.

- ``apiserver``: a running :class:`SandboxApiServer` on a free loopback port, one per test;
  the test fails if the server answered any request with a 500 (a sandbox bug).
- ``kubeconfig``: a kubeconfig file for it (context ``conveyor-sandbox``, namespace default).
- ``kubectl``: a :class:`tests.e2e.kubectl.Kubectl` bound to that kubeconfig.
- ``http``: an ``aiohttp.ClientSession`` whose base URL is the server.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from conveyor_sandbox.apiserver import SandboxApiServer
from tests.e2e.kubectl import Kubectl


@pytest.fixture
async def apiserver() -> AsyncIterator[SandboxApiServer]:
    async with SandboxApiServer() as server:
        yield server
    assert not server.failures, f"the sandbox API server failed: {server.failures!r}"


@pytest.fixture
def kubeconfig(apiserver: SandboxApiServer, tmp_path: Path) -> Path:
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def kubectl(kubeconfig: Path, tmp_path: Path) -> Kubectl:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    return Kubectl(kubeconfig, tmp_path / "kubectl-cache")


@pytest.fixture
async def http(apiserver: SandboxApiServer) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=apiserver.url) as session:
        yield session
