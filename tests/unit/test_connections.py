"""TLS settings reach the Redis and PostgreSQL clients."""

from __future__ import annotations

import certifi
import pytest

from conveyor_engine.connections import database_ssl, redis_client
from conveyor_engine.settings import EngineSettings

PEM = open(certifi.where()).read().split("-----END CERTIFICATE-----")[0] + \
    "-----END CERTIFICATE-----\n"


def test_redis_ca_is_used_only_for_tls_urls() -> None:
    tls = redis_client(EngineSettings(redis_url="rediss://127.0.0.1:6380/0", redis_ca_cert=PEM))
    plain = redis_client(EngineSettings(redis_url="redis://127.0.0.1:6379/0", redis_ca_cert=PEM))
    assert tls.connection_pool.connection_kwargs["ssl_ca_data"] == PEM
    assert "ssl_ca_data" not in plain.connection_pool.connection_kwargs


@pytest.mark.parametrize(("sslmode", "checks_name"), [("verify-full", True),
                                                      ("verify-ca", False)])
def test_database_ca_builds_a_verifying_context(sslmode: str, checks_name: bool) -> None:
    settings = EngineSettings(database_url=f"postgresql://db.internal/x?sslmode={sslmode}",
                              database_ca_cert=PEM)
    context = database_ssl(settings)
    assert context is not None and context.check_hostname is checks_name
    assert context.cert_store_stats()["x509_ca"] >= 1
    assert database_ssl(EngineSettings()) is None


# -- Sentinel and Cluster URLs ---------------------------------------------------------------

from conveyor_engine.connections import RedisTarget, RedisUrlError, parse_redis_url  # noqa: E402


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://127.0.0.1:6379/0", RedisTarget("single")),
    ("rediss://h:6380/1", RedisTarget("single", tls=True)),
    ("redis+sentinel://s1:26379,s2:26380/mymaster/2",
     RedisTarget("sentinel", (("s1", 26379), ("s2", 26380)), "mymaster", 2)),
    ("redis+sentinel://:p%40ss@s1/mymaster",
     RedisTarget("sentinel", (("s1", 26379),), "mymaster", 0, None, "p@ss")),
    ("rediss+sentinel://u:pw@[::1]:26379/m",
     RedisTarget("sentinel", (("::1", 26379),), "m", 0, "u", "pw", True)),
    ("redis+cluster://n1:7000,n2:7001,n3",
     RedisTarget("cluster", (("n1", 7000), ("n2", 7001), ("n3", 6379)))),
    ("redis+cluster://n1:7000/0", RedisTarget("cluster", (("n1", 7000),))),
])
def test_parse_redis_url(url: str, expected: RedisTarget) -> None:
    assert parse_redis_url(url) == expected


@pytest.mark.parametrize(("url", "message"), [
    ("redis+sentinel://s1:26379", "names the master"),
    ("redis+sentinel://s1:26379/m/x", "not a number"),
    ("redis+cluster://n1:7000/3", "only database 0"),
    ("redis+cluster://n1:notaport", "not host:port"),
    ("redis+cluster://", "at least one"),
])
def test_bad_ha_urls_name_the_setting(url: str, message: str) -> None:
    with pytest.raises(RedisUrlError, match="CONVEYOR_REDIS_URL") as info:
        parse_redis_url(url)
    assert message in str(info.value)


def test_clients_of_each_kind_carry_the_timeouts() -> None:
    from redis.asyncio.cluster import RedisCluster

    settings = EngineSettings(redis_timeout_seconds=3)
    single = redis_client(settings)
    assert single.connection_pool.connection_kwargs["socket_timeout"] == 3
    sentinel = redis_client(settings, "redis+sentinel://127.0.0.1:1/m/0")
    assert sentinel.connection_pool.service_name == "m"
    assert sentinel.connection_pool.connection_kwargs["socket_timeout"] == 3
    cluster = redis_client(settings, "redis+cluster://127.0.0.1:1")
    assert isinstance(cluster, RedisCluster)


def test_settings_accept_the_ha_schemes_and_refuse_others() -> None:
    from conveyor_engine.settings import SettingsError, load_settings

    assert load_settings(redis_url="redis+sentinel://s:26379/m/0").redis_url.startswith("redis+")
    with pytest.raises(SettingsError, match="CONVEYOR_REDIS_URL"):
        load_settings(redis_url="http://x")
