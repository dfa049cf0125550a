"""Clients for Redis and PostgreSQL built from the settings, TLS and high availability included.

``CONVEYOR_REDIS_URL`` takes three forms (:func:`parse_redis_url`):

* ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS): one server, as
  ``redis-py``'s ``Redis.from_url`` reads it;
* ``redis+sentinel://[user:password@]s1:26379,s2:26379/<master name>[/db]``: the master of
  a Sentinel group, found through the listed sentinels and found again after a failover
  (redis-py's ``redis.asyncio.sentinel.Sentinel.master_for``); the credentials are the
  Redis servers', the sentinels are asked without any;
* ``redis+cluster://[user:password@]n1:6379,n2:6379``: a Redis Cluster reached through the
  listed startup nodes (redis-py's ``redis.asyncio.cluster.RedisCluster``); database 0 only,
  as Redis Cluster has no other.

With ``CONVEYOR_REDIS_CA_CERT`` / ``CONVEYOR_DATABASE_CA_CERT`` (PEM text, typically from a
Secret) the server certificate is verified against that CA. For PostgreSQL this applies
when the URL asks for TLS or the CA is given; hostname checking follows the URL's
``sslmode`` as libpq defines it (``verify-full`` checks the name).

Every Redis call gets a socket timeout (``CONVEYOR_REDIS_TIMEOUT_SECONDS``) and every
PostgreSQL statement a command timeout (``CONVEYOR_DATABASE_TIMEOUT_SECONDS``), so a server
that stops answering without closing the connection (a black hole) raises instead of
blocking a worker forever.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from .settings import EngineSettings


class RedisUrlError(ValueError):
    """``CONVEYOR_REDIS_URL`` has a Sentinel or Cluster form that cannot be used; the
    message says what was expected."""


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """Where Redis is: ``kind`` is ``"single"``, ``"sentinel"`` or ``"cluster"``; ``nodes``
    the (host, port) pairs of the sentinels or cluster startup nodes; ``master`` the
    Sentinel service name; ``db`` the database number; ``tls`` for ``rediss``."""

    kind: str
    nodes: tuple[tuple[str, int], ...] = ()
    master: str = ""
    db: int = 0
    username: str | None = None
    password: str | None = None
    tls: bool = False


def _nodes(hosts: str, default_port: int, url_kind: str) -> tuple[tuple[str, int], ...]:
    nodes = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [IPv6]:port
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        port = port or str(default_port)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise RedisUrlError(
                f"CONVEYOR_REDIS_URL: {url_kind} node {item!r} is not host:port")
        nodes.append((host, int(port)))
    if not nodes:
        raise RedisUrlError(f"CONVEYOR_REDIS_URL: a {url_kind} URL needs at least one host:port")
    return tuple(nodes)


def parse_redis_url(url: str) -> RedisTarget:
    """Read ``CONVEYOR_REDIS_URL`` into a :class:`RedisTarget` (pure; no I/O).

    Plain ``redis://`` / ``rediss://`` URLs give ``kind="single"`` and are otherwise left to
    redis-py. Raises :class:`RedisUrlError` for a Sentinel URL without a master name, a
    Cluster URL naming a database other than 0, or a node that is not ``host:port``.
    """
    scheme, _, rest = url.partition("://")
    base, _, variant = scheme.partition("+")
    if variant not in ("sentinel", "cluster"):
        return RedisTarget("single", tls=base == "rediss")
    netloc, _, path = rest.partition("/")
    path = path.split("?", 1)[0]
    credentials, _, hosts = netloc.rpartition("@")
    username = password = None
    if credentials:
        user, has_password, secret = credentials.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if has_password else None
    parts = [p for p in path.split("/") if p]
    if variant == "sentinel":
        nodes = _nodes(hosts, 26379, "sentinel")
        if not parts:
            raise RedisUrlError("CONVEYOR_REDIS_URL: a redis+sentinel URL names the master "
                                "after the hosts: redis+sentinel://host:26379/mymaster/0")
        db = parts[1] if len(parts) > 1 else "0"
        if not db.isdigit():
            raise RedisUrlError(f"CONVEYOR_REDIS_URL: database {db!r} is not a number")
        return RedisTarget("sentinel", nodes, unquote(parts[0]), int(db), username, password,
                           base == "rediss")
    nodes = _nodes(hosts, 6379, "cluster")
    if parts not in ([], ["0"]):
        raise RedisUrlError("CONVEYOR_REDIS_URL: Redis Cluster has only database 0; "
                            "use redis+cluster://host:6379,host2:6379")
    return RedisTarget("cluster", nodes, "", 0, username, password, base == "rediss")


def redis_client(settings: EngineSettings, url: str | None = None, **options: Any) -> Redis:
    """A decoding Redis client for ``url`` (default the settings' URL), of the kind the URL
    names (one server, a Sentinel group's master, or a Cluster; see the module).

    Calls time out after ``settings.redis_timeout_seconds`` unless ``options`` say
    otherwise. A ``RedisCluster`` is returned for a cluster URL; it offers the commands,
    pipelines (without MULTI), pub/sub and locks the engine uses.
    """
    url = url or settings.redis_url
    target = parse_redis_url(url)
    options.setdefault("socket_timeout", settings.redis_timeout_seconds)
    options.setdefault("socket_connect_timeout", settings.redis_timeout_seconds)
    if target.tls and settings.redis_ca_cert:
        options.setdefault("ssl_ca_data", settings.redis_ca_cert)
    if target.kind == "single":
        return Redis.from_url(url, decode_responses=True, **options)
    if target.username:
        options.setdefault("username", target.username)
    if target.password:
        options.setdefault("password", target.password)
    if target.tls:
        options.setdefault("ssl", True)
    if target.kind == "sentinel":
        sentinel_options = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout")}
        sentinel = Sentinel(list(target.nodes), sentinel_kwargs=sentinel_options)
        return sentinel.master_for(target.master, db=target.db, decode_responses=True,
                                   **options)
    return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in target.nodes],
                        decode_responses=True, **options)  # type: ignore[return-value]


def database_pool_options(settings: EngineSettings) -> dict[str, Any]:
    """asyncpg pool options bounding every statement and connect by
    ``settings.database_timeout_seconds`` (asyncpg's ``command_timeout`` and ``timeout``)."""
    return {"command_timeout": settings.database_timeout_seconds,
            "timeout": settings.database_timeout_seconds}


def database_ssl(settings: EngineSettings) -> ssl.SSLContext | None:
    """An SSL context verifying against ``CONVEYOR_DATABASE_CA_CERT``, or None (libpq rules
    from the URL apply then)."""
    if not settings.database_ca_cert:
        return None
    context = ssl.create_default_context(cadata=settings.database_ca_cert)
    mode = parse_qs(urlsplit(settings.database_url).query).get("sslmode", [""])[0]
    context.check_hostname = mode == "verify-full"
    return context
