"""PostgreSQL for tests, benchmarks and the sandbox: the local one, or a private server.

:func:`postgres_server` yields a server URL whose database is a maintenance database
(``postgresql://postgres@127.0.0.1:5432/postgres``) to create databases from;
:func:`fresh_database` / :func:`fresh_database_sync` yield the URL of a new, empty database
and drop it afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import secrets
import shutil
import subprocess
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg

from .base import (
    PROBE_TIMEOUT_SECONDS,
    START_ATTEMPTS,
    START_TIMEOUT_SECONDS,
    ServerStartError,
    existing_or_private,
    find_free_port,
    run_coroutine,
    scratch_dir,
    tail,
)

#: Where CI machines run PostgreSQL (trust auth); ``postgres`` is the maintenance database.
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _pg_probe(url: str) -> str | None:
    """Connect to ``url`` and run ``SELECT 1``; ``None`` when it works, else the error text."""
    try:
        conn = await asyncpg.connect(url, timeout=PROBE_TIMEOUT_SECONDS)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()
    except Exception as exc:  # any failure (refused, auth, bad URL) means "not usable"
        return f"{type(exc).__name__}: {exc}"
    return None


def _pg_probe_sync(url: str) -> str | None:
    return run_coroutine(lambda: _pg_probe(url))


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
    with scratch_dir("conveyor-pg-") as tmp:
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
                f"initdb failed (exit {init.returncode}); end of its log {log}:\n{tail(log)}"
            )
        failures: list[str] = []
        for _attempt in range(START_ATTEMPTS):
            port = find_free_port()
            url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
            # pg_ctl hands these to a shell, hence the quotes around the socket directory.
            options = f"-p {port} -k '{tmp}' -c listen_addresses=127.0.0.1 -c fsync=off"
            # pg_ctl -w waits (with its own deadline) until the server accepts connections
            # or has failed; -l sends the server's output to the log, keeping tests quiet.
            start = subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options,
                 "-w", "-t", str(int(START_TIMEOUT_SECONDS)), "start"],
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
            f"End of its log {log}:\n{tail(log)}"
        )


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
    run_coroutine(lambda: _create_database(server_url, name))
    try:
        yield _with_database(server_url, name)
    finally:
        run_coroutine(lambda: _drop_database(server_url, name))


def postgres_server(
    url: str | None = None, *, probe_url: str = DEFAULT_POSTGRES_URL
) -> contextlib.AbstractContextManager[str]:
    """A context manager yielding the URL of a PostgreSQL server to create databases on.

    ``url`` if given (used as is: its database is the one connected to for ``CREATE
    DATABASE``), else ``probe_url`` if it answers, else a private server
    (:func:`local_postgres_server`; not possible as root), in the order and for the reasons
    of :func:`.base.existing_or_private`. Raises :class:`ServerStartError` naming what was
    tried and how to fix it when none works.
    """
    return existing_or_private(
        url, probe_url=probe_url, probe=_pg_probe_sync, start_private=local_postgres_server,
        what="PostgreSQL",
        fix_given="start it, or fix or unset CONVEYOR_TEST_DATABASE_URL to use 127.0.0.1:5432 "
                  "or a private server",
        fix_none="",
    )
