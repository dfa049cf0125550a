"""Redis for tests, benchmarks and the sandbox: the local one, or a private ``redis-server``.

:func:`redis_server` yields a URL such as ``redis://127.0.0.1:6379/0``; callers sharing a
server keep apart by key prefix and clean up with :func:`delete_prefixed_keys`.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Iterator

import redis

from .base import (
    PROBE_TIMEOUT_SECONDS,
    START_ATTEMPTS,
    ServerStartError,
    existing_or_private,
    find_free_port,
    scratch_dir,
    stop_process,
    tail,
    wait_for,
)

#: Where CI machines (and most developer machines) run Redis.
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


def _redis_ping(url: str) -> str | None:
    """PING the server at ``url``; return ``None`` when it answers, else the error text."""
    try:
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=PROBE_TIMEOUT_SECONDS,
            socket_timeout=PROBE_TIMEOUT_SECONDS,
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
    with scratch_dir("conveyor-redis-") as tmp:
        log = tmp / "redis.log"
        failures: list[str] = []
        for _attempt in range(START_ATTEMPTS):
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
                problem = wait_for(lambda u=url: _redis_ping(u), proc)
                if problem is None:
                    yield url
                    return
                failures.append(f"port {port}: {problem}")
            finally:
                stop_process(proc)
        raise ServerStartError(
            f"started {binary} {START_ATTEMPTS} times but it never answered PING "
            f"({'; '.join(failures)}). End of its log {log}:\n{tail(log)}"
        )


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


def redis_server(url: str | None = None, *,
                 probe_url: str = DEFAULT_REDIS_URL) -> contextlib.AbstractContextManager[str]:
    """A context manager yielding the URL of a Redis server that answers PING.

    ``url`` if given, else ``probe_url`` if it answers, else a private ``redis-server``
    (:func:`local_redis_server`), in the order and for the reasons of
    :func:`.base.existing_or_private`. Raises :class:`ServerStartError` naming what was
    tried and how to fix it when none works.
    """
    return existing_or_private(
        url, probe_url=probe_url, probe=_redis_ping, start_private=local_redis_server,
        what="Redis",
        fix_given="start it, or fix or unset CONVEYOR_TEST_REDIS_URL to use 127.0.0.1:6379 "
                  "or a private redis-server",
        fix_none=". Fix: set CONVEYOR_TEST_REDIS_URL to a running Redis, or install "
                 "redis-server",
    )
