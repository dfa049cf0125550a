"""The entry object: an emulated Kubernetes API server on a loopback port.

Usage (tests, the sandbox)::

    async with SandboxApiServer() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        # kubectl --kubeconfig=... / kopf with KUBECONFIG=... / raw HTTP to api.url
        api.objects("conveyor.dev", "v1alpha1", "executions", "default")
        [r for r in api.requests if r.verb == "watch"]
"""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from types import TracebackType
from typing import Any

import kmock

from . import kubeconfig
from .handler import SandboxHandler
from .requestinfo import RequestRecord


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SandboxApiServer:
    """Serves the emulated Kubernetes API over plain HTTP on ``host:port`` (0: any free port).

    Only loopback addresses are accepted for ``host``: the server has no authentication.
    ``bookmark_interval`` is how often idle watches that allow bookmarks get one (seconds);
    ``keep_history`` keeps every version of every object in ``handler.objects`` (kmock's
    :class:`kmock.ObjectsArray`), which tests like and long-running sandboxes may not.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        bookmark_interval: float = 5.0,
        keep_history: bool = True,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(f"the sandbox API server binds loopback addresses only, not {host}")
        self.host = host
        self.port = port
        self.handler = SandboxHandler(bookmark_interval=bookmark_interval,
                                      keep_history=keep_history)
        self._server: kmock.Server | None = None

    async def __aenter__(self) -> SandboxApiServer:
        await self.handler.__aenter__()
        self._server = kmock.Server(self.handler, host=self.host, port=self.port or None)
        await self._server.__aenter__()
        self.port = self._server.port
        self.handler.server_address = f"{self.host}:{self.port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.handler.store.close_watches()  # let streaming handlers finish before shutdown
        if self._server is not None:
            await self._server.__aexit__(exc_type, exc, tb)
            self._server = None
        await self.handler.__aexit__(exc_type, exc, tb)

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._server is None:
            raise RuntimeError("the sandbox API server is not running")
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request seen so far, in arrival order (live list)."""
        return self.handler.records

    def write_kubeconfig(self, path: str | Path, namespace: str = "default") -> Path:
        """Write a kubeconfig (cluster/user/context ``conveyor-sandbox``) pointing here."""
        return kubeconfig.write_kubeconfig(path, self.url, namespace)

    def objects(
        self, group: str, version: str, plural: str, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Current objects of a resource (as served in ``version``), optionally one namespace.

        Raises ``KeyError`` for a resource the server does not serve in that version.
        """
        rtype = self.handler.registry.lookup(group, version, plural)
        if rtype is None:
            raise KeyError(f"{group}/{version}/{plural} is not served")
        items = self.handler.store.list(rtype.storage_key, namespace)
        return [copy.deepcopy(self.handler.api.present(rtype, version, obj)) for obj in items]

    @property
    def failures(self) -> list[BaseException]:
        """Unexpected exceptions (answered as 500): should stay empty; tests assert on it."""
        return self.handler.failures
