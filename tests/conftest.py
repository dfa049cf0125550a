"""Session fixtures that give tests real services: Redis, PostgreSQL and httpbin.

Every fixture is lazy: nothing is probed or started until a test asks for it, so unit tests
start nothing. Servers come from :mod:`conveyor_sandbox.services`: an explicit URL from the
environment, else the standard local port, else a private server started for the session.

Environment:

- ``CONVEYOR_TEST_REDIS_URL``: Redis to use (e.g. ``redis://127.0.0.1:6379/0``).
- ``CONVEYOR_TEST_DATABASE_URL``: PostgreSQL server to create the session database on; its
  database part is where ``CREATE DATABASE`` runs (e.g. ``.../postgres``).

Parallel sessions on one machine (two terminals, CI jobs, xdist workers) do not collide:
Redis keys carry a random per-session prefix, the database has a random name, and private
servers use kernel-chosen ports and their own temporary directories.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

from conveyor_sandbox import services


def _env(name: str) -> str | None:
    """The variable's value, or ``None`` when unset or empty (``VAR=`` means "not set")."""
    return os.environ.get(name) or None


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """URL of a Redis that answers PING, e.g. ``redis://127.0.0.1:6379/0``.

    Shared with other sessions; write only keys under :func:`key_prefix`.
    """
    with services.redis_server(_env("CONVEYOR_TEST_REDIS_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def key_prefix(redis_url: str) -> Iterator[str]:
    """A Redis key prefix unique to this session, ``ct-<8 hex>`` (valid ``CONVEYOR_KEY_PREFIX``).

    At session end every key named ``<prefix>`` or ``<prefix>:*`` is deleted (SCAN + UNLINK),
    so a shared Redis is left as found.
    """
    prefix = f"ct-{secrets.token_hex(4)}"
    yield prefix
    services.delete_prefixed_keys(redis_url, prefix)


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database, to create databases from.

    For tests that need a database of their own (e.g. migrations from scratch), use
    ``services.fresh_database(postgres_server_url, "name")``.
    """
    with services.postgres_server(_env("CONVEYOR_TEST_DATABASE_URL")) as url:
        yield url


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """URL of a database created for this session, ``conveyor_test_<8 hex>``; dropped at end.

    One database for the whole session: tests share it, so they must not assume it is empty.
    """
    with services.fresh_database_sync(postgres_server_url, "conveyor_test") as url:
        yield url


@pytest.fixture(scope="session")
def httpbin_url() -> Iterator[str]:
    """Base URL of a real httpbin in a subprocess, e.g. ``http://127.0.0.1:40123``."""
    with services.httpbin_server() as url:
        yield url
