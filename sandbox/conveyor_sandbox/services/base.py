"""What the local service starters share: errors, ports, processes, polling, and the rule
"use the server at this URL, else the one on the standard port, else start a private one".

Waiting is always "poll a condition until a deadline", never a fixed sleep. Only loopback
addresses are ever used for servers started here.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

_T = TypeVar("_T")

# How long a freshly started server may take to answer. Generous because CI machines are
# sometimes slow and a false "did not start" is worse than waiting a few seconds more.
START_TIMEOUT_SECONDS = 30.0
# How long one probe of an existing server may take; a healthy local server answers in ms.
PROBE_TIMEOUT_SECONDS = 2.0
_POLL_INTERVAL_SECONDS = 0.05
# find_free_port() is racy (another process may take the port before our server binds it),
# so servers that take a port number are retried on a new port a few times.
START_ATTEMPTS = 3

#: A probe: ``None`` when the server at the URL answers, else why not (for messages).
Probe = Callable[[str], "str | None"]


class ServerStartError(RuntimeError):
    """A server was found neither running nor startable; the message says what to do.

    When a private server failed to start, its temporary directory (with the log named in
    the message) is kept for inspection.
    """


@contextlib.contextmanager
def existing_or_private(
    url: str | None,
    *,
    probe_url: str,
    probe: Probe,
    start_private: Callable[[], contextlib.AbstractContextManager[str]],
    what: str,
    fix_given: str,
    fix_none: str,
) -> Iterator[str]:
    """Yield the URL of a usable ``what`` server (``"Redis"``, ``"PostgreSQL"``).

    Order, and why:

    1. ``url`` if given (a ``CONVEYOR_TEST_*_URL`` or ``--*-url``): an explicit choice is never
       silently replaced, so one that ``probe`` rejects raises :class:`ServerStartError`
       (its message ends with ``fix_given``).
    2. ``probe_url`` (the standard local port) if it answers: CI and most developer machines
       run the service there, and reusing it is fastest. Callers share it by prefixing their
       keys or creating their own databases.
    3. A private server from ``start_private()`` (a context manager yielding its URL), for
       machines without one; it is stopped on exit. If it cannot start either, raises
       :class:`ServerStartError` naming both failures, then ``fix_none``.
    """
    if url:
        problem = probe(url)
        if problem is not None:
            raise ServerStartError(
                f"{what} at {redact(url)} does not answer ({problem}); {fix_given}")
        yield url
        return
    probe_problem = probe(probe_url)
    if probe_problem is None:
        yield probe_url
        return
    with contextlib.ExitStack() as stack:
        try:
            started = stack.enter_context(start_private())
        except ServerStartError as exc:
            raise ServerStartError(
                f"no {what} available: {redact(probe_url)} does not answer ({probe_problem}), "
                f"and starting a private one failed: {exc}{fix_none}"
            ) from exc
        yield started


@contextlib.contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory, removed on exit unless a :class:`ServerStartError` escapes.

    Why keep it then: the error message points at the server's log inside it.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    keep = False
    try:
        yield path
    except ServerStartError:
        keep = True
        raise
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def find_free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago.

    The kernel picks it (bind to port 0). Another process may take it before the caller
    binds it, so starters retry on a new port when a server fails to start.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def tail(path: Path, lines: int = 20) -> str:
    """Last ``lines`` lines of a log file (or a note that it is missing), for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def run_coroutine(make: Callable[[], Awaitable[_T]]) -> _T:
    """Run the coroutine made by ``make`` to completion from synchronous code.

    It runs in a short-lived thread with its own event loop. Why not ``asyncio.run`` here:
    it refuses to run while a loop runs in this thread, and on exit it resets the thread's
    current event loop, which breaks pytest-asyncio's session loop. Exceptions propagate.
    """
    result: list[_T] = []
    error: list[BaseException] = []

    async def main() -> None:
        result.append(await make())

    def target() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # re-raised in the caller's thread
            error.append(exc)

    thread = threading.Thread(target=target, name="conveyor-services", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``proc`` (SIGTERM), wait up to ``timeout`` seconds, then kill it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def wait_for(probe: Callable[[], str | None], proc: subprocess.Popen[bytes]) -> str | None:
    """Poll ``probe`` until it returns ``None`` (ready), ``proc`` exits, or the deadline.

    Returns ``None`` when ready, else a description of why not (last probe error or exit code).
    """
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    problem: str | None = "not probed"
    while time.monotonic() < deadline:
        problem = probe()
        if problem is None:
            return None
        code = proc.poll()
        if code is not None:
            return f"exited with code {code} ({problem})"
        time.sleep(_POLL_INTERVAL_SECONDS)
    return f"no answer within {START_TIMEOUT_SECONDS:.0f}s ({problem})"
