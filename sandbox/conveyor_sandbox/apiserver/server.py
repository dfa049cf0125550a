"""The entry object: an emulated Kubernetes API server on a loopback port.

Usage (tests, the sandbox)::

    async with SandboxApiServer() as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        # kubectl --kubeconfig=... / kopf with KUBECONFIG=... / raw HTTP to api.url
        api.objects("conveyor.dev", "v1alpha1", "executions", "default")
        [r for r in api.requests if r.verb == "watch"]
        api.react("patch", "", "v1", "configmaps", status=503)  # inject a failure
        api.history("", "configmaps", "cm", "default")           # every stored version

Served by aiohttp's low-level server (``aiohttp.web.Server``): the handler sees each request
as it came, with no routing table, because :mod:`.requestinfo` does the routing.
"""

from __future__ import annotations

import copy
import ipaddress
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp.web

from . import kubeconfig
from .handler import SandboxHandler
from .reactions import Reaction
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
    ``keep_history`` keeps every stored version of every object (:meth:`history`), which
    tests like and long-running sandboxes may not.
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
        self._runner: aiohttp.web.ServerRunner | None = None

    async def __aenter__(self) -> SandboxApiServer:
        # handler_cancellation: a client that hangs up ends its watch handler at once.
        runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self.handler,
                                                             handler_cancellation=True),
                                          shutdown_timeout=1.0)
        await runner.setup()
        try:
            site = aiohttp.web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        self.handler.server_address = f"{self.host}:{self.port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.handler.store.close_watches()  # let streaming handlers finish before shutdown
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` once started."""
        if self._runner is None:
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

    def react(self, verb: str, group: str, version: str, resource: str, *, status: int,
              reason: str = "", message: str = "") -> Reaction:
        """Answer requests for ``verb`` on ``group/version/resource`` with ``status`` from now
        on, before the emulated API sees them (see :mod:`.reactions`); returns the reaction,
        which :meth:`unreact` removes."""
        return self.handler.reactions.add(
            Reaction(verb, group, version, resource, status, reason, message))

    def stall(self, verb: str, group: str, version: str, resource: str) -> Reaction:
        """Leave requests for ``verb`` on ``group/version/resource`` unanswered from now on
        (a black-holed connection: the client sees nothing until it times out) until
        :meth:`unreact`; streams already open are not touched (they end at their
        ``timeoutSeconds``)."""
        return self.handler.reactions.add(
            Reaction(verb, group, version, resource, 0, stall=True))

    def unreact(self, reaction: Reaction) -> None:
        """Stop answering with ``reaction``; ``ValueError`` if it is not in force."""
        self.handler.reactions.active.remove(reaction)

    def history(self, group: str, plural: str, name: str,
                namespace: str | None = None) -> list[dict[str, Any]]:
        """Every stored version of one object, oldest first, as stored (in the storage
        version); empty for an object never stored. ``KeyError`` for a resource not served,
        ``RuntimeError`` without ``keep_history``.
        """
        rtype = self.handler.registry.get(group, plural)
        if rtype is None:
            raise KeyError(f"{group}/{plural} is not served")
        return [copy.deepcopy(version) for version in
                self.handler.store.history(rtype.storage_key, namespace or "", name)]

    @property
    def failures(self) -> list[BaseException]:
        """Unexpected exceptions (answered as 500): should stay empty; tests assert on it."""
        return self.handler.failures
