"""The test fixtures and `conveyor_sandbox.services` give real, isolated services."""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse

import asyncpg
import httpx
import pytest
import redis
import redis.asyncio

from conveyor_sandbox import services

pytestmark = pytest.mark.integration

_PG_TEMPLATE = "postgresql://postgres@127.0.0.1:{port}/postgres"


def _closed_port(url_template: str) -> str:
    """``url_template`` with ``{port}`` set to a loopback port nothing listens on (it was free
    a moment ago)."""
    return url_template.format(port=services.find_free_port())


async def test_redis_answers_ping_and_keys_are_namespaced(redis_url: str, key_prefix: str):
    assert re.fullmatch(r"ct-[0-9a-f]{8}", key_prefix)
    client = redis.asyncio.Redis.from_url(redis_url)
    try:
        assert await client.ping()
        await client.set(f"{key_prefix}:probe", "1")
        found = [key async for key in client.scan_iter(match=f"{key_prefix}:*")]
        assert f"{key_prefix}:probe".encode() in found
    finally:
        await client.aclose()


def test_delete_prefixed_keys_removes_only_that_prefix(redis_url: str, key_prefix: str):
    client = redis.Redis.from_url(redis_url)
    doomed, kept = f"{key_prefix}:doomed", f"{key_prefix}:doomedness"
    try:
        client.set(doomed, "1")
        client.set(f"{doomed}:a", "1")
        client.set(f"{doomed}:b:c", "1")
        client.set(kept, "1")

        assert services.delete_prefixed_keys(redis_url, doomed) == 3

        assert client.exists(doomed, f"{doomed}:a", f"{doomed}:b:c") == 0
        assert client.exists(kept) == 1
    finally:
        client.close()


@pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not on PATH")
def test_private_redis_server_starts_when_none_answers():
    probe = _closed_port("redis://127.0.0.1:{port}/0")
    with services.redis_server(None, probe_url=probe) as url:
        assert url != probe
        client = redis.Redis.from_url(url)
        assert client.ping()
        client.close()
    stopped = redis.Redis.from_url(url, socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        stopped.ping()


def test_explicit_unreachable_urls_raise_clear_errors():
    with (
        pytest.raises(services.ServerStartError, match="CONVEYOR_TEST_REDIS_URL"),
        services.redis_server(_closed_port("redis://127.0.0.1:{port}/0")),
    ):
        pass
    with (
        pytest.raises(services.ServerStartError, match="CONVEYOR_TEST_DATABASE_URL"),
        services.postgres_server(_closed_port(_PG_TEMPLATE)),
    ):
        pass


async def test_private_postgres_server_starts_or_explains_why_not():
    probe = _closed_port(_PG_TEMPLATE)
    if os.geteuid() == 0:
        # initdb refuses to run as root, so the fallback must say what to do instead.
        with (
            pytest.raises(services.ServerStartError, match="CONVEYOR_TEST_DATABASE_URL"),
            services.postgres_server(None, probe_url=probe),
        ):
            pass
        return
    if services.local_postgres._find_postgres_bindir() is None:
        pytest.skip("initdb/pg_ctl not installed")
    with services.postgres_server(None, probe_url=probe) as url:
        assert url != probe
        conn = await asyncpg.connect(url)
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()


async def test_database_fixture_is_a_database_of_this_session(
    database_url: str, postgres_server_url: str
):
    name = urllib.parse.urlsplit(database_url).path.lstrip("/")
    server_default = urllib.parse.urlsplit(postgres_server_url).path.lstrip("/")
    assert re.fullmatch(r"conveyor_test_[0-9a-f]{8}", name)
    assert name != server_default
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT current_database()") == name
    finally:
        await conn.close()


async def test_fresh_database_is_empty_and_dropped_on_exit(postgres_server_url: str):
    # The session database is shared by all tests (some create tables), so emptiness is
    # checked on a database made the same way, just for this test.
    async with services.fresh_database(postgres_server_url, "conveyor_test") as url:
        conn = await asyncpg.connect(url)
        try:
            name = await conn.fetchval("SELECT current_database()")
            tables = await conn.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            )
        finally:
            await conn.close()
        assert tables == 0
    server = await asyncpg.connect(postgres_server_url)
    try:
        assert await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name) is None
    finally:
        await server.close()


async def test_httpbin_answers_json(httpbin_url: str):
    async with httpx.AsyncClient(base_url=httpbin_url, timeout=10) as client:
        response = await client.get("/json")
    assert response.status_code == 200
    assert "slideshow" in response.json()
