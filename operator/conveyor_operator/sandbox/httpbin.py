"""The sandbox's httpbin, which is also the workers' ``HTTP_PROXY``, and what it routes.

Workers get ``HTTP_PROXY`` pointing here, so every plain-``http://`` request they make to a
host that is not loopback arrives in absolute form (``GET http://host/path HTTP/1.1``).
Only :data:`SANDBOX_HOST` (on port 80) is served, by the real httpbin app (PyPI
``httpbin``); any other host is answered ``502 Bad Gateway`` with a short text saying the
sandbox only serves :data:`SANDBOX_HOST`, so a typo in a URL fails its task with the cause
in the error instead of quietly reaching httpbin. Requests in origin form (``GET /path``,
made to this server's own loopback address) are served by httpbin as usual.

Run as ``python -m conveyor_operator.sandbox.httpbin <fd> [<host>...]``: it serves, threaded,
on the listening socket whose file descriptor is ``<fd>`` (the parent binds it, so there is
no race for the port); ``<host>`` arguments replace :data:`SANDBOX_HOST` as the hosts served
(:attr:`SandboxConfig.httpbin_hosts <.sandbox.SandboxConfig>`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

#: The host the sandbox serves through its proxy (examples call it).
SANDBOX_HOST = "httpbin.conveyor.test"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def refusal(target: str, hosts: Sequence[str] = (SANDBOX_HOST,)) -> str | None:
    """Why a request for ``target`` (the request-target) is refused, or None to serve it.

    Origin-form targets (``/get``) are direct requests to this server and always served;
    absolute-form ones (``http://host/get``) came through the proxy and are served only for
    ``hosts`` on port 80 (names compared case-insensitively); anything else, such as
    ``https://`` or the authority form of ``CONNECT host:443``, is refused: the proxy does
    not tunnel HTTPS.
    """
    if target.startswith("/") or target == "*":
        return None
    parts = urlsplit(target)
    if parts.scheme.lower() != "http" or not parts.netloc:
        return _no_tunnel(target, hosts)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = (parts.hostname or "").lower()
    if host in {h.lower() for h in hosts} and port in (None, 80):
        return None
    return f"no such host in the Conveyor sandbox: {parts.netloc}; {_serves(hosts)}"


def _serves(hosts: Sequence[str]) -> str:
    return f"the sandbox serves only {', '.join(f'http://{h}' for h in hosts)} (its httpbin)"


def _no_tunnel(target: str, hosts: Sequence[str]) -> str:
    return f"the Conveyor sandbox's proxy does not tunnel {target!r}; {_serves(hosts)}"


def routed(app: WsgiApp, hosts: Sequence[str] = (SANDBOX_HOST,)) -> WsgiApp:
    """``app`` behind the routing rule of :func:`refusal` (a WSGI middleware)."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or "/"
        if environ.get("REQUEST_METHOD") == "CONNECT":
            why: str | None = _no_tunnel(target, hosts)
        else:
            why = refusal(target, hosts)
        if why is None:
            return app(environ, start_response)
        body = (why + "\n").encode()
        start_response("502 Bad Gateway", [("Content-Type", "text/plain; charset=utf-8"),
                                           ("Content-Length", str(len(body))),
                                           ("X-Conveyor-Sandbox", "no-route")])
        return [body]

    return middleware


def main(argv: list[str]) -> None:
    """Serve httpbin behind :func:`routed` on the inherited listening socket ``argv[0]``."""
    from httpbin import app  # the sandbox extra; imported here, in the child, only
    from werkzeug.serving import make_server

    hosts = argv[1:] or [SANDBOX_HOST]
    server = make_server("127.0.0.1", 0, routed(app, hosts), threaded=True, fd=int(argv[0]))
    print(f"httpbin serving {', '.join(hosts)} on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
