"""The outbound guard's I/O: ``http`` tasks connect only to addresses the policy allows.

The check sits in an httpcore network backend (:class:`GuardedBackend`), the one place
where httpcore opens a TCP connection: the host is resolved here, *every* resolved address
is checked with :meth:`conveyor_engine.egress.EgressPolicy.decide`, and the connection is
made to one of those checked addresses, never by name. So DNS rebinding (a name answering
a public address to a check and a metadata address to the connect) cannot slip past, and
every redirect hop is checked, since each new origin is a new connection through the same
backend (a pooled connection is reused only for the origin it was checked for). TLS still
verifies the certificate against the host name: httpcore passes the origin's host as
``server_hostname`` to ``start_tls``.

A refused address raises :class:`EgressDenied` before any packet is sent to it. It is not
an httpcore error, so httpx lets it through unchanged, and the ``http`` task turns it into
a non-retryable failure of kind ``EgressDenied``.

Proxies: ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` in the worker's environment are
honoured (httpx's rules), since clusters often allow egress only through a proxy. A request
sent through a proxy is connected to the proxy, and the proxy resolves the target's name,
out of this backend's sight: so every request (each redirect hop too) whose target is an IP
literal is checked before it is sent (:func:`check_literal_target`), and for names the
proxy is the control point (make it refuse metadata addresses too; docs/engine.md).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing

import httpcore
import httpx
from httpx._utils import get_environment_proxies  # httpx's own env-proxy rules

from ..egress import EgressPolicy, IPAddress, host_address, refusal_message

#: The failure kind (what ``retryOn`` would match; never retried: it would repeat).
EGRESS_DENIED = "EgressDenied"


class EgressDenied(Exception):
    """A connection the egress policy refused.

    Attributes: ``host`` (as in the URL), ``port``, ``address`` (the refused IP) and
    ``rule`` (the policy's :attr:`~conveyor_engine.egress.Decision.rule`). The message is
    :func:`conveyor_engine.egress.refusal_message`.
    """

    def __init__(self, host: str, port: int, address: IPAddress, rule: str,
                 message: str) -> None:
        super().__init__(message)
        self.host, self.port, self.address, self.rule = host, port, address, rule


async def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to for TCP (an IP literal is itself, in any spelling
    :func:`conveyor_engine.egress.host_address` reads), de-duplicated
    in resolver order. Raises ``httpcore.ConnectError`` when the name does not resolve
    (httpx maps it to ``httpx.ConnectError``: retryable, as before the guard)."""
    literal = host_address(host)
    if literal is not None:
        return [literal]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {exc}") from exc
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        # IPv6 sockaddr may carry a zone ("fe80::1%eth0"); the zone does not change the range.
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: no addresses")
    return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's default backend, connecting only to addresses ``policy`` allows.

    ``connect_tcp``: resolve ``host`` (within the connect timeout), check every address
    (any refused one refuses the host: the answer does not depend on which address the
    resolver lists first), then connect to the checked addresses in order until one
    answers. Raises :class:`EgressDenied`, ``httpcore.ConnectError`` or
    ``httpcore.ConnectTimeout``.
    """

    def __init__(self, policy: EgressPolicy,
                 inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self.policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """See the class docstring; ``timeout`` (seconds) bounds resolving and connecting."""
        try:
            async with asyncio.timeout(timeout):
                addresses = await resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host!r} timed out") from exc
        for address in addresses:
            decision = self.policy.decide(address)
            if not decision.allowed:
                raise EgressDenied(host, port, address, decision.rule,
                                   refusal_message(host, port, address, decision))
        error: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never used by http tasks (no ``uds`` is configured)."""
        raise httpcore.ConnectError("unix sockets are not used by http tasks")

    async def sleep(self, seconds: float) -> None:
        """Delegated to the inner backend (httpcore's retry waits)."""
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool built on :class:`GuardedBackend`.

    httpx 0.28 has no ``network_backend`` argument, so the pool httpx built is replaced by
    an equal one with the guarded backend (``_pool`` is what ``handle_async_request``
    uses; ``tests/unit/test_http_egress.py`` fails if that ever stops being true).
    ``verify`` as httpx's (``SSL_CERT_FILE``/``SSL_CERT_DIR`` are still honoured).
    """

    def __init__(self, policy: EgressPolicy, *, verify: bool | str = True,
                 limits: httpx.Limits | None = None, proxy: str | None = None) -> None:
        # httpx's own default limits (100 connections, 20 kept alive).
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, limits=limits, proxy=proxy)
        if proxy is not None:
            # httpcore's proxy pool is a connection pool too: the connection to the proxy
            # goes through the guard (the proxy then resolves the target's name).
            self._pool._network_backend = GuardedBackend(policy)
            return
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy),
        )


def check_literal_target(policy: EgressPolicy) -> typing.Callable[
        [httpx.Request], typing.Awaitable[None]]:
    """An httpx ``request`` event hook (run for every request, each redirect hop
    included) raising :class:`EgressDenied` when the URL's host is an IP literal that
    ``policy`` refuses: the check a proxied request gets, the proxy resolving names. Every
    numeric IPv4 spelling a resolver reads counts as a literal (``http://2852039166/``,
    ``http://0xa9fea9fe/``: :func:`conveyor_engine.egress.host_address`)."""

    async def check(request: httpx.Request) -> None:
        address = host_address(request.url.host)
        if address is None:
            return
        decision = policy.decide(address)
        if not decision.allowed:
            port = request.url.port or (443 if request.url.scheme == "https" else 80)
            raise EgressDenied(request.url.host, port, address, decision.rule,
                               refusal_message(request.url.host, port, address, decision))

    return check


def guarded_client(policy: EgressPolicy, *, timeout: float) -> httpx.AsyncClient:
    """The worker's shared client for ``http`` tasks: redirects followed, every direct
    connection (every hop) through :class:`GuardedTransport`, every IP-literal target
    checked before it is sent (also through a proxy from the environment; see the module
    docstring); ``timeout`` seconds per operation."""
    # httpx reads proxies from the environment only for a client without its own
    # transport, so the same mounts are built here, each a guarded transport (httpx's own
    # reading of HTTP_PROXY/HTTPS_PROXY/ALL_PROXY/NO_PROXY, curl's NO_PROXY rules).
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        pattern: None if proxy is None else GuardedTransport(policy, proxy=proxy)
        for pattern, proxy in get_environment_proxies().items()}
    return httpx.AsyncClient(transport=GuardedTransport(policy), mounts=mounts,
                             follow_redirects=True, timeout=httpx.Timeout(timeout),
                             event_hooks={"request": [check_literal_target(policy)]})
