"""The one rule every local service starter follows: the URL given, else the standard local
port, else a private server (``conveyor_sandbox.services.base.existing_or_private``).

The real servers are exercised in tests/integration/test_services.py; here the probes and
the private server are stand-ins, to cover every branch of the choice as a table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from conveyor_sandbox.services import ServerStartError, existing_or_private

GIVEN, STANDARD, PRIVATE = "svc://given", "svc://127.0.0.1:1", "svc://127.0.0.1:2"


def choose(given: str | None, answering: set[str], private_starts: bool) -> tuple[str, list[str]]:
    """The URL chosen and the events seen (probes, private start/stop), in order."""
    events: list[str] = []

    def probe(url: str) -> str | None:
        events.append(f"probe {url}")
        return None if url in answering else "refused"

    @contextlib.contextmanager
    def start_private() -> Iterator[str]:
        events.append("start private")
        if not private_starts:
            raise ServerStartError("no binary")
        try:
            yield PRIVATE
        finally:
            events.append("stop private")

    with existing_or_private(given, probe_url=STANDARD, probe=probe,
                             start_private=start_private, what="Svc",
                             fix_given="fix the URL", fix_none="; install svc") as url:
        events.append(f"use {url}")
    return url, events


@pytest.mark.parametrize(
    ("given", "answering", "private_starts", "chosen", "events"),
    [
        # An explicit URL that answers is used; nothing else is even probed.
        (GIVEN, {GIVEN, STANDARD}, True, GIVEN, [f"probe {GIVEN}", f"use {GIVEN}"]),
        # No URL: the standard port when it answers, and a found server is left alone.
        (None, {STANDARD}, True, STANDARD, [f"probe {STANDARD}", f"use {STANDARD}"]),
        ("", {STANDARD}, True, STANDARD, [f"probe {STANDARD}", f"use {STANDARD}"]),
        # Nothing on the standard port: a private server, stopped after use.
        (None, set(), True, PRIVATE,
         [f"probe {STANDARD}", "start private", f"use {PRIVATE}", "stop private"]),
    ],
)
def test_the_given_url_else_the_standard_port_else_a_private_server(
    given: str | None, answering: set[str], private_starts: bool, chosen: str,
    events: list[str],
) -> None:
    assert choose(given, answering, private_starts) == (chosen, events)


@pytest.mark.parametrize(
    ("given", "answering", "private_starts", "message"),
    [
        # A wrong explicit choice is never silently replaced by another server.
        (GIVEN, {STANDARD}, True, f"Svc at {GIVEN} does not answer (refused); fix the URL"),
        (None, set(), False, f"no Svc available: {STANDARD} does not answer (refused), and "
                             "starting a private one failed: no binary; install svc"),
    ],
)
def test_when_nothing_works_the_error_says_what_was_tried_and_what_to_do(
    given: str | None, answering: set[str], private_starts: bool, message: str
) -> None:
    with pytest.raises(ServerStartError) as raised:
        choose(given, answering, private_starts)
    assert str(raised.value) == message


def test_a_password_in_a_url_never_reaches_the_message() -> None:
    with pytest.raises(ServerStartError) as raised, existing_or_private(
        "redis://:s3cret@127.0.0.1:9/0", probe_url=STANDARD, probe=lambda url: "refused",
        start_private=contextlib.nullcontext, what="Redis", fix_given="", fix_none="",
    ):
        pass
    assert "s3cret" not in str(raised.value) and ":***@127.0.0.1:9" in str(raised.value)
