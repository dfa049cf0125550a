"""httpbin (PyPI ``httpbin``) for tests and the sandbox, and what it routes as a proxy.

:func:`httpbin_server` runs the real httpbin app in a child process and yields its base URL
(``http://127.0.0.1:40123``). Tests call it directly (``GET /status/503``, ``/delay/2``);
the sandbox also hands it to the workers as ``HTTP_PROXY``.

In the sandbox, workers get ``HTTP_PROXY`` pointing here, so every plain-``http://`` request
they make to a host that is not loopback arrives in absolute form
(``GET http://host/path HTTP/1.1``).
Only :data:`SANDBOX_HOST` (on port 80) is served, by the real httpbin app (PyPI
``httpbin``); any other host is answered ``502 Bad Gateway`` with a short text saying the
sandbox only serves :data:`SANDBOX_HOST`, so a typo in a URL fails its task with the cause
in the error instead of quietly reaching httpbin. Requests in origin form (``GET /path``,
made to this server's own loopback address) are served by httpbin as usual.

The child is :mod:`.httpbin_child`; the hosts served are :data:`SANDBOX_HOST` unless
:attr:`SandboxConfig.httpbin_hosts <conveyor_sandbox.sandbox.SandboxConfig>` says otherwise.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .base import PROBE_TIMEOUT_SECONDS, ServerStartError, scratch_dir, stop_process, tail, wait_for

_CHILD = "conveyor_sandbox.services.httpbin_child"

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


def _http_get_ok(url: str) -> str | None:
    """GET ``url``; ``None`` on a 2xx answer, else the error text."""
    try:
        with urllib.request.urlopen(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
            response.read()
    except Exception as exc:  # refused, reset, HTTP error: all mean "not ready yet"
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def httpbin_server(hosts: Sequence[str] = (SANDBOX_HOST,), *,
                   log_path: Path | None = None) -> Iterator[str]:
    """Run httpbin behind :func:`routed` (``hosts``) in a child process; yield its base URL.

    Why a subprocess: a server thread in the test process would share its GIL and event
    loop timing with the code under test and could not be killed if it hangs. Why real
    httpbin: HTTP task tests need real redirects, status codes, delays and echoes.

    The child serves on a loopback socket bound here and handed over by file descriptor, so
    no other process can take the port in between. Its output goes to ``log_path`` (appended),
    or to a log in a temporary directory. Yields e.g. ``http://127.0.0.1:40123``; the child is
    terminated on exit.

    Raises :class:`ServerStartError` (naming the log file) when ``GET /get`` does not answer
    within the start timeout or the child exits, e.g. because httpbin is not installed.
    """
    with scratch_dir("conveyor-httpbin-") as tmp:
        log = log_path or tmp / "httpbin.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            port = int(listener.getsockname()[1])
            fd = listener.fileno()
            with log.open("ab") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-m", _CHILD, str(fd), *hosts],
                    pass_fds=(fd,),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    cwd=tmp,
                )
        finally:
            # The child holds its own copy of the socket; ours is no longer needed.
            listener.close()
        base = f"http://127.0.0.1:{port}"
        try:
            problem = wait_for(lambda: _http_get_ok(f"{base}/get"), proc)
            if problem is not None:
                raise ServerStartError(
                    f"httpbin did not start ({problem}); is the `httpbin` package installed "
                    f"(pip install '.[sandbox]')? End of its log {log}:\n{tail(log)}"
                )
            yield base
        finally:
            stop_process(proc, timeout=5.0)
