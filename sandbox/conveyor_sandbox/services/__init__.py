"""Real Redis, PostgreSQL and httpbin on this machine, for tests, benchmarks and the sandbox.

Conveyor is tested against the real services, never fakes: Redis semantics (streams, consumer
groups, Lua, pub/sub) and PostgreSQL semantics (transactions, locks) are what the engine relies
on. These helpers find a running server, or start a private one when none is running
(:func:`.base.existing_or_private`), so the same code works on CI (services on the standard
ports), on a laptop with neither, and in ``conveyor dev``.

Every helper is a context manager; servers it started are stopped on exit, servers it found
are left alone. Shapes:

- :func:`redis_server` yields a Redis URL such as ``redis://127.0.0.1:6379/0``.
- :func:`postgres_server` yields a server URL whose database is a maintenance database
  (``postgresql://postgres@127.0.0.1:5432/postgres``) to create databases from.
- :func:`fresh_database` / :func:`fresh_database_sync` yield the URL of a new, empty database.
- :func:`httpbin_server` yields a base URL such as ``http://127.0.0.1:40123`` (no trailing /).

Failures raise :class:`ServerStartError` (a :class:`RuntimeError`) saying what was tried and
how to fix it. Only loopback addresses are ever used for servers started here.
"""

from .base import ServerStartError, existing_or_private, find_free_port
from .httpbin import SANDBOX_HOST, httpbin_server
from .local_postgres import (
    DEFAULT_POSTGRES_URL,
    fresh_database,
    fresh_database_sync,
    local_postgres_server,
    postgres_server,
)
from .local_redis import (
    DEFAULT_REDIS_URL,
    delete_prefixed_keys,
    local_redis_server,
    redis_server,
)

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "DEFAULT_REDIS_URL",
    "SANDBOX_HOST",
    "ServerStartError",
    "delete_prefixed_keys",
    "existing_or_private",
    "find_free_port",
    "fresh_database",
    "fresh_database_sync",
    "httpbin_server",
    "local_postgres_server",
    "local_redis_server",
    "postgres_server",
    "redis_server",
]
