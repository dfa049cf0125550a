"""The example task types, tested with the SDK's harness: no worker, Redis or PostgreSQL.

Run them with ``pytest examples/tasktypes/tests`` (``scripts/test`` includes them).
"""

from __future__ import annotations

import hashlib
import threading

import pytest
from conveyor_example_tasks.checksum import checksum
from conveyor_example_tasks.wordcount import word_count

from conveyor_engine.sdk import Failed, Succeeded
from conveyor_engine.sdk.testing import TaskEnvironment


async def test_checksum_digests_and_heartbeats_per_chunk() -> None:
    env = TaskEnvironment()
    outputs = await env.outputs(checksum, {"text": "hello world", "chunkBytes": 4})
    assert outputs == {"algorithm": "sha256", "bytes": 11,
                       "digest": hashlib.sha256(b"hello world").hexdigest()}
    assert env.heartbeats == [{"bytes": 4}, {"bytes": 8}, {"bytes": 11}]


@pytest.mark.parametrize(("params", "message"), [
    ({"text": "x", "algorithm": "crc32"}, "params.algorithm: unknown algorithm 'crc32'"),
    ({"text": "x", "chunk_size": 4}, "params.chunk_size: Extra inputs are not permitted"),
    ({}, "params.text: Field required"),
])
async def test_checksum_refuses_bad_params_naming_the_field(params: dict, message: str) -> None:
    outcome = await TaskEnvironment().run(checksum, params)
    assert isinstance(outcome, Failed) and not outcome.retryable
    assert message in outcome.error


async def test_checksum_stops_when_cancelled_mid_run() -> None:
    env = TaskEnvironment()
    env.on_heartbeat = lambda details: env.cancel("execution deleted")
    outcome = await env.run(checksum, {"text": "a" * 100, "chunkBytes": 1})
    assert outcome == Failed("cancelled: execution deleted", retryable=False)
    assert len(env.heartbeats) == 1  # interrupted at its next await


async def test_a_paced_checksum_is_interrupted_in_its_pause_and_says_so(
        caplog: pytest.LogCaptureFixture) -> None:
    env = TaskEnvironment(execution_id="e-1", task_name="digest")
    env.on_heartbeat = lambda details: details["bytes"] == 2 and env.cancel("deleted")
    caplog.set_level("INFO", logger="conveyor_example_tasks")
    # An hour of pauses: only the cancellation (in the pause) ends it.
    outcome = await env.run(checksum, {"text": "a" * 3600, "chunkBytes": 1,
                                       "pauseSeconds": 1})
    assert outcome == Failed("cancelled: deleted", retryable=False)
    assert [r.getMessage() for r in caplog.records] == [
        "checksum e-1/digest attempt 1: started",
        "checksum e-1/digest attempt 1: interrupted after 2 of 3600 bytes"]


async def test_word_count_counts_in_a_thread() -> None:
    seen: list[str] = []
    env = TaskEnvironment()

    original = word_count.function

    def spy(params, ctx):
        seen.append(threading.current_thread().name)
        return original(params, ctx)

    type(word_count).function = staticmethod(spy)
    try:
        outcome = await env.run(word_count, {"text": "the cat\nThe dog\nthe end", "top": 2})
    finally:
        type(word_count).function = staticmethod(original)
    assert outcome == Succeeded({"words": 6, "lines": 3, "characters": 23, "top": [
        {"word": "the", "count": 3}, {"word": "cat", "count": 1}]})
    assert seen and seen[0] != threading.main_thread().name


async def test_word_count_without_words_fails_without_retry() -> None:
    outcome = await TaskEnvironment().run(word_count, {"text": "  \n "})
    assert isinstance(outcome, Failed)
    assert (outcome.retryable, outcome.kind) == (False, "NonRetryableError")
    assert outcome.error.startswith("text: has no words")


async def test_word_count_is_told_of_cancellation() -> None:
    env = TaskEnvironment()
    env.on_heartbeat = lambda details: env.cancel()
    outcome = await env.run(word_count, {"text": "word\n" * 50_000})
    assert outcome == Failed("cancelled: cancelled by the test", retryable=False)
    assert env.context is not None and env.context.cancelled.is_set()
    # The cancel reaches the thread asynchronously: it may count one more block before it
    # looks, but it stops long before the 50,000 lines (five heartbeats) are done.
    assert env.heartbeats[0] == {"lines": 10_000} and len(env.heartbeats) < 5, env.heartbeats
