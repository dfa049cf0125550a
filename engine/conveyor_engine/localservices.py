"""Real Redis, PostgreSQL and httpbin on this machine, for tests, benchmarks and the sandbox.

Conveyor is tested against the real services, never fakes: Redis semantics (streams, consumer
groups, Lua, pub/sub) and PostgreSQL semantics (transactions, locks) are what the engine relies
on. These helpers find a running server, or start a private one when none is running, so the
same code works on CI (services on the standard ports), on a laptop with neither, and in
`conveyor dev`.

Every helper is a context manager; servers it started are stopped on exit, servers it found
are left alone. Waiting is always "poll a condition until a deadline", never a fixed sleep.

Shapes:

- :func:`redis_server` yields a Redis URL such as ``redis://127.0.0.1:6379/0``.
- :func:`postgres_server` yields a server URL whose database is a maintenance database
  (``postgresql://postgres@127.0.0.1:5432/postgres``) to create databases from.
- :func:`fresh_database` / :func:`fresh_database_sync` yield the URL of a new, empty database.
- :func:`httpbin_server` yields a base URL such as ``http://127.0.0.1:40123`` (no trailing /).

Failures raise :class:`ServerStartError` (a :class:`RuntimeError`) saying what was tried and
how to fix it. Only loopback addresses are ever used for servers started here.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import asyncpg
import redis

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "ServerStartError",
    "delete_prefixed_keys",
    "find_free_port",
    "fresh_database",
    "fresh_database_sync",
    "httpbin_server",
    "local_postgres_server",
    "local_redis_server",
    "postgres_server",
    "redis_server",
]

#: Where CI machines (and most developer machines) run Redis.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: Where CI machines run PostgreSQL (trust auth); ``postgres`` is the maintenance database.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

_T = TypeVar("_T")

# How long a freshly started server may take to answer. Generous because CI machines are
# sometimes slow and a false "did not start" is worse than waiting a few seconds more.
_START_TIMEOUT_SECONDS = 30.0
# How long one probe of an existing server may take; a healthy local server answers in ms.
_PROBE_TIMEOUT_SECONDS = 2.0
_POLL_INTERVAL_SECONDS = 0.05
# find_free_port() is racy (another process may take the port before our server binds it),
# so servers that take a port number are retried on a new port a few times.
_START_ATTEMPTS = 3


class ServerStartError(RuntimeError):
    """A server was found neither running nor startable; the message says what to do.

    When a private server failed to start, its temporary directory (with the log named in
    the message) is kept for inspection.
    """


@contextlib.contextmanager
def _scratch_dir(prefix: str) -> Iterator[Path]:
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


def _redact(url: str) -> str:
    """``url`` with any password replaced by ``***``, for error messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _tail(path: Path, lines: int = 20) -> str:
    """Last ``lines`` lines of a log file (or a note that it is missing), for error messages."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _run_coroutine(make: Callable[[], Awaitable[_T]]) -> _T:
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

    thread = threading.Thread(target=target, name="conveyor-localservices", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate ``proc`` (SIGTERM), wait up to ``timeout`` seconds, then kill it."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --------------------------------------------------------------------------------------------
# Redis


def _redis_ping(url: str) -> str | None:
    """PING the server at ``url``; return ``None`` when it answers, else the error text."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=_PROBE_TIMEOUT_SECONDS,
            socket_timeout=_PROBE_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure (refused, auth, bad URL) means "not usable"
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def local_redis_server(executable: str | None = None) -> Iterator[str]:
    """Start a private ``redis-server`` on a free loopback port; yield its URL (db 0).

    The server keeps nothing on disk (``--save "" --appendonly no``), runs in a temporary
    directory with its log there, and is stopped (and the directory removed) on exit.

    Raises :class:`ServerStartError` when ``redis-server`` is not on PATH (and ``executable`` is
    not given) or when it does not answer PING within the start timeout; the message includes
    the end of its log.
    """
    binary = executable or shutil.which("redis-server")
    if binary is None:
        raise ServerStartError(
            "redis-server is not on PATH; install it (Debian: apt-get install redis-server) "
            "or set CONVEYOR_TEST_REDIS_URL to a running Redis"
        )
    with _scratch_dir("conveyor-redis-") as tmp:
        log = tmp / "redis.log"
        failures: list[str] = []
        for _attempt in range(_START_ATTEMPTS):
            port = find_free_port()
            url = f"redis://127.0.0.1:{port}/0"
            # Errors before redis opens --logfile (bad arguments) go to stderr: same file.
            with log.open("ab") as log_file:
                proc = subprocess.Popen(
                    [
                        binary, "--port", str(port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no",
                        "--dir", str(tmp), "--logfile", str(log),
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                )
            try:
                problem = _wait_for(lambda u=url: _redis_ping(u), proc)
                if problem is None:
                    yield url
                    return
                failures.append(f"port {port}: {problem}")
            finally:
                _stop_process(proc)
        raise ServerStartError(
            f"started {binary} {_START_ATTEMPTS} times but it never answered PING "
            f"({'; '.join(failures)}). End of its log {log}:\n{_tail(log)}"
        )


def _wait_for(probe: Callable[[], str | None], proc: subprocess.Popen[bytes]) -> str | None:
    """Poll ``probe`` until it returns ``None`` (ready), ``proc`` exits, or the deadline.

    Returns ``None`` when ready, else a description of why not (last probe error or exit code).
    """
    deadline = time.monotonic() + _START_TIMEOUT_SECONDS
    problem: str | None = "not probed"
    while time.monotonic() < deadline:
        problem = probe()
        if problem is None:
            return None
        code = proc.poll()
        if code is not None:
            return f"exited with code {code} ({problem})"
        time.sleep(_POLL_INTERVAL_SECONDS)
    return f"no answer within {_START_TIMEOUT_SECONDS:.0f}s ({problem})"


@contextlib.contextmanager
def redis_server(url: str | None = None, *, probe_url: str = DEFAULT_REDIS_URL) -> Iterator[str]:
    """Yield the URL of a Redis server that answers PING.

    Order, and why:

    1. ``url`` if given (for example ``CONVEYOR_TEST_REDIS_URL``): an explicit choice is
       never silently replaced, so a wrong one raises :class:`ServerStartError`.
    2. ``probe_url`` (``redis://127.0.0.1:6379/0``) if it answers: CI and most developer
       machines run Redis there, and reusing it is fastest. Callers share it safely by
       prefixing their keys (see :func:`delete_prefixed_keys`).
    3. A private ``redis-server`` (:func:`local_redis_server`), for machines without a
       running Redis; it is stopped on exit.

    Raises :class:`ServerStartError` naming what was tried and how to fix it when none works.
    """
    if url:
        problem = _redis_ping(url)
        if problem is not None:
            raise ServerStartError(
                f"Redis at {_redact(url)} does not answer PING ({problem}); start it, or fix or "
                "unset CONVEYOR_TEST_REDIS_URL to use 127.0.0.1:6379 or a private redis-server"
            )
        yield url
        return
    probe_problem = _redis_ping(probe_url)
    if probe_problem is None:
        yield probe_url
        return
    with contextlib.ExitStack() as stack:
        try:
            started = stack.enter_context(local_redis_server())
        except ServerStartError as exc:
            raise ServerStartError(
                f"no Redis available: {_redact(probe_url)} does not answer ({probe_problem}), "
                f"and starting a private one failed: {exc}. Fix: set CONVEYOR_TEST_REDIS_URL "
                "to a running Redis, or install redis-server"
            ) from exc
        yield started


def delete_prefixed_keys(url: str, prefix: str) -> int:
    """Delete every key named ``prefix`` or starting with ``prefix:``; return how many.

    Uses SCAN (never KEYS, which blocks a shared server) and UNLINK in batches. Glob
    characters in ``prefix`` are escaped, so it only ever matches literally.
    """
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", prefix) + ":*"
    client = redis.Redis.from_url(url, socket_timeout=30)
    deleted = 0
    try:
        batch: list[bytes | str] = [prefix]
        for key in client.scan_iter(match=pattern, count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.unlink(*batch))
                batch = []
        if batch:
            deleted += int(client.unlink(*batch))
    finally:
        client.close()
    return deleted


# --------------------------------------------------------------------------------------------
# PostgreSQL


async def _pg_probe(url: str) -> str | None:
    """Connect to ``url`` and run ``SELECT 1``; ``None`` when it works, else the error text."""
    try:
        conn = await asyncpg.connect(url, timeout=_PROBE_TIMEOUT_SECONDS)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
    except Exception as exc:  # any failure (refused, auth, bad URL) means "not usable"
        return f"{type(exc).__name__}: {exc}"
    return None


def _pg_probe_sync(url: str) -> str | None:
    return _run_coroutine(lambda: _pg_probe(url))


def _find_postgres_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``: PATH first, then Debian's layout.

    Debian keeps them in ``/usr/lib/postgresql/<major>/bin`` (not on PATH); the newest
    major version wins.
    """
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    candidates = glob.glob("/usr/lib/postgresql/*/bin/initdb")

    def major(path: str) -> float:
        try:
            return float(Path(path).parent.parent.name)
        except ValueError:
            return 0.0

    for candidate in sorted(candidates, key=major, reverse=True):
        bindir = Path(candidate).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    return None


@contextlib.contextmanager
def local_postgres_server() -> Iterator[str]:
    """Start a private PostgreSQL on a free loopback port; yield its maintenance-db URL.

    Runs ``initdb`` (trust auth, user ``postgres``, no fsync) into a temporary data directory
    and ``pg_ctl start`` with the unix socket in that directory too (so it never needs
    ``/var/run/postgresql``). Stopped with ``pg_ctl stop -m fast`` and removed on exit.
    Yields ``postgresql://postgres@127.0.0.1:<port>/postgres``.

    Raises :class:`ServerStartError` when running as root (``initdb`` refuses to), when
    ``initdb``/``pg_ctl`` cannot be found, or when the server does not start (with the end
    of its log).
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        raise ServerStartError(
            "cannot start a private PostgreSQL as root (initdb refuses to run as root); "
            "start the system PostgreSQL on 127.0.0.1:5432 or set CONVEYOR_TEST_DATABASE_URL "
            "to a running server (e.g. postgresql://postgres@127.0.0.1:5432/postgres)"
        )
    bindir = _find_postgres_bindir()
    if bindir is None:
        raise ServerStartError(
            "initdb/pg_ctl not found on PATH or in /usr/lib/postgresql/*/bin; install the "
            "PostgreSQL server (Debian: apt-get install postgresql) or set "
            "CONVEYOR_TEST_DATABASE_URL to a running server"
        )
    with _scratch_dir("conveyor-pg-") as tmp:
        data, log = tmp / "data", tmp / "postgres.log"
        with log.open("ab") as log_file:
            init = subprocess.run(
                [str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                 "-E", "UTF8", "--locale=C", "--no-sync"],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                check=False,
            )
        if init.returncode != 0:
            raise ServerStartError(
                f"initdb failed (exit {init.returncode}); end of its log {log}:\n{_tail(log)}"
            )
        failures: list[str] = []
        for _attempt in range(_START_ATTEMPTS):
            port = find_free_port()
            url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            # pg_ctl hands these to a shell, hence the quotes around the socket directory.
            options = f"-p {port} -k '{tmp}' -c listen_addresses=127.0.0.1 -c fsync=off"
            # pg_ctl -w waits (with its own deadline) until the server accepts connections
            # or has failed; -l sends the server's output to the log, keeping tests quiet.
            start = subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                 "-w", "-t", str(int(_START_TIMEOUT_SECONDS)), "start"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                check=False,
            )
            try:
                problem = (
                    _pg_probe_sync(url) if start.returncode == 0
                    else f"pg_ctl start exited {start.returncode}: "
                    f"{start.stderr.decode(errors='replace').strip()}"
                )
                if problem is None:
                    yield url
                    return
                failures.append(f"port {port}: {problem}")
            finally:
                subprocess.run(
                    [str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL, check=False,
                )
        raise ServerStartError(
            f"PostgreSQL from {bindir} did not start ({'; '.join(failures)}). "
            f"End of its log {log}:\n{_tail(log)}"
        )


@contextlib.contextmanager
def postgres_server(
    url: str | None = None, *, probe_url: str = DEFAULT_POSTGRES_URL
) -> Iterator[str]:
    """Yield the URL of a PostgreSQL server to create databases on.

    Order, and why (same as :func:`redis_server`):

    1. ``url`` if given (for example ``CONVEYOR_TEST_DATABASE_URL``), used as is: its
       database is the one connected to for ``CREATE DATABASE``. A wrong explicit choice
       raises rather than being silently replaced.
    2. ``probe_url`` (``postgresql://postgres@127.0.0.1:5432/postgres``) if it answers: CI
       runs PostgreSQL there with trust auth.
    3. A private server (:func:`local_postgres_server`), for laptops without one; not
       possible as root.

    Raises :class:`ServerStartError` naming what was tried and how to fix it when none works.
    """
    if url:
        problem = _pg_probe_sync(url)
        if problem is not None:
            raise ServerStartError(
                f"PostgreSQL at {_redact(url)} does not answer ({problem}); start it, or fix "
                "or unset CONVEYOR_TEST_DATABASE_URL to use 127.0.0.1:5432 or a private server"
            )
        yield url
        return
    probe_problem = _pg_probe_sync(probe_url)
    if probe_problem is None:
        yield probe_url
        return
    with contextlib.ExitStack() as stack:
        try:
            started = stack.enter_context(local_postgres_server())
        except ServerStartError as exc:
            raise ServerStartError(
                f"no PostgreSQL available: {_redact(probe_url)} does not answer "
                f"({probe_problem}), and starting a private one failed: {exc}"
            ) from exc
        yield started


def _database_name(name_prefix: str) -> str:
    """``<prefix>_<8 hex>``, lowercased, limited to ``[a-z0-9_]`` and 63 bytes (PG's limit)."""
    clean = re.sub(r"[^a-z0-9_]", "_", name_prefix.lower()).strip("_") or "db"
    return f"{clean[:54]}_{secrets.token_hex(4)}"


def _with_database(url: str, name: str) -> str:
    """``url`` with its path (the database name) replaced by ``name``; query kept."""
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(url)._replace(path=f"/{name}"))


async def _create_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        # Identifiers cannot be bound parameters; the name is [a-z0-9_] only, quoted anyway.
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def _drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(server_url, timeout=10)
    try:
        # FORCE (PostgreSQL 13+) ends connections a test leaked, so the drop never hangs.
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def fresh_database(server_url: str, name_prefix: str) -> AsyncIterator[str]:
    """Create a new empty database ``<name_prefix>_<8 hex>``; yield its URL; drop it on exit.

    ``server_url`` is any URL of the server that may run ``CREATE DATABASE`` (see
    :func:`postgres_server`). The random suffix keeps parallel test sessions apart. The drop
    uses ``WITH (FORCE)`` so leaked connections cannot block it. Errors from asyncpg (for
    example missing CREATEDB privilege) propagate.
    """
    name = _database_name(name_prefix)
    await _create_database(server_url, name)
    try:
        yield _with_database(server_url, name)
    finally:
        await _drop_database(server_url, name)


@contextlib.contextmanager
def fresh_database_sync(server_url: str, name_prefix: str) -> Iterator[str]:
    """Synchronous :func:`fresh_database`, usable whether or not an event loop is running.

    The create and drop run on a helper thread's own loop (see :func:`_run_coroutine`).
    """
    name = _database_name(name_prefix)
    _run_coroutine(lambda: _create_database(server_url, name))
    try:
        yield _with_database(server_url, name)
    finally:
        _run_coroutine(lambda: _drop_database(server_url, name))


# --------------------------------------------------------------------------------------------
# httpbin

# Runs in the child: serve httpbin's Flask app, threaded, on the listening socket whose file
# descriptor is argv[1]. The parent binds the socket, so there is no race for the port.
_HTTPBIN_CHILD = """\
import sys
from werkzeug.serving import make_server
from httpbin import app
server = make_server("127.0.0.1", 0, app, threaded=True, fd=int(sys.argv[1]))
server.serve_forever()
"""


def _http_get_ok(url: str) -> str | None:
    """GET ``url``; ``None`` on a 2xx answer, else the error text."""
    try:
        with urllib.request.urlopen(url, timeout=_PROBE_TIMEOUT_SECONDS) as response:
            response.read()
    except Exception as exc:  # refused, reset, HTTP error: all mean "not ready yet"
        return f"{type(exc).__name__}: {exc}"
    return None


@contextlib.contextmanager
def httpbin_server() -> Iterator[str]:
    """Run the real httpbin app (PyPI ``httpbin``) in a subprocess; yield its base URL.

    Why a subprocess: a server thread in the test process would share its GIL and event
    loop timing with the code under test and could not be killed if it hangs. Why real
    httpbin: HTTP task tests need real redirects, status codes, delays and echoes.

    The child serves on a loopback socket bound here and handed over by file descriptor, so
    no other process can take the port in between. Its output goes to a temporary log
    file. Yields e.g. ``http://127.0.0.1:40123``; the child is terminated on exit.

    Raises :class:`ServerStartError` (naming the log file) when ``GET /get`` does not answer
    within the start timeout or the child exits, e.g. because httpbin is not installed.
    """
    with _scratch_dir("conveyor-httpbin-") as tmp:
        log = tmp / "httpbin.log"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(128)
            port = int(listener.getsockname()[1])
            fd = listener.fileno()
            with log.open("ab") as log_file:
                proc = subprocess.Popen(
                    [sys.executable, "-c", _HTTPBIN_CHILD, str(fd)],
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
            problem = _wait_for(lambda: _http_get_ok(f"{base}/get"), proc)
            if problem is not None:
                raise ServerStartError(
                    f"httpbin did not start ({problem}); is the `httpbin` package installed "
                    f"(pip install -e '.[test]')? End of its log {log}:\n{_tail(log)}"
                )
            yield base
        finally:
            _stop_process(proc)
