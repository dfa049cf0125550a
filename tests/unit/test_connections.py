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
