"""Settings are validated at start; a bad value names its environment variable."""

from __future__ import annotations

import pytest

from conveyor_engine.settings import SettingsError, load_settings


def test_defaults_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVEYOR_CONCURRENCY", "7")
    settings = load_settings()
    assert settings.concurrency == 7
    assert settings.pool == "default"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("CONVEYOR_CONCURRENCY", "lots", "CONVEYOR_CONCURRENCY"),
        ("CONVEYOR_CONCURRENCY", "0", "greater than or equal to 1"),
        ("CONVEYOR_REDIS_URL", "http://x", "CONVEYOR_REDIS_URL"),
        ("CONVEYOR_DATABASE_URL", "mysql://x", "CONVEYOR_DATABASE_URL"),
        ("CONVEYOR_POOL", "Not_Valid!", "CONVEYOR_POOL"),
        ("CONVEYOR_LEASE_SECONDS", "0.1", "CONVEYOR_LEASE_SECONDS"),
    ],
)
def test_bad_value_stops_start_with_the_variable_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert expected in str(caught.value)
    assert variable in str(caught.value)


def test_worker_command_exits_2_with_message_on_bad_setting() -> None:
    import os
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "conveyor_engine"],
        env={**os.environ, "CONVEYOR_CONCURRENCY": "-3"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2
    assert "CONVEYOR_CONCURRENCY" in result.stderr
    assert "Traceback" not in result.stderr
