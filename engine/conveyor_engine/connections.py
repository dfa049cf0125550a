"""Clients for Redis and PostgreSQL built from the settings, TLS included.

With ``CONVEYOR_REDIS_CA_CERT`` / ``CONVEYOR_DATABASE_CA_CERT`` (PEM text, typically from a
Secret) the server certificate is verified against that CA. For PostgreSQL this applies
when the URL asks for TLS or the CA is given; hostname checking follows the URL's
``sslmode`` as libpq defines it (``verify-full`` checks the name).
"""

from __future__ import annotations

import ssl
from typing import Any
from urllib.parse import parse_qs, urlsplit

from redis.asyncio import Redis

from .settings import EngineSettings


def redis_client(settings: EngineSettings, url: str | None = None, **options: Any) -> Redis:
    """A decoding Redis client for ``url`` (default the settings' URL)."""
    url = url or settings.redis_url
    if url.startswith("rediss://") and settings.redis_ca_cert:
        options.setdefault("ssl_ca_data", settings.redis_ca_cert)
    return Redis.from_url(url, decode_responses=True, **options)


def database_ssl(settings: EngineSettings) -> ssl.SSLContext | None:
    """An SSL context verifying against ``CONVEYOR_DATABASE_CA_CERT``, or None (libpq rules
    from the URL apply then)."""
    if not settings.database_ca_cert:
        return None
    context = ssl.create_default_context(cadata=settings.database_ca_cert)
    mode = parse_qs(urlsplit(settings.database_url).query).get("sslmode", [""])[0]
    context.check_hostname = mode == "verify-full"
    return context
