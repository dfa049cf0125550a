"""The task SDK without servers: the decorator, errors, outputs, heartbeats, cancellation,
the registry and entry points, and the built-in types run through the harness."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from importlib import metadata

import pytest
from pydantic import BaseModel, ConfigDict

from conveyor_engine import tasktypes
from conveyor_engine.retries import retry_on_matches, retry_on_problem
from conveyor_engine.sdk import (
    Failed,
    NonRetryableError,
    RetryableError,
    Succeeded,
    Suspended,
    TaskContext,
    task_type,
)
from conveyor_engine.sdk.testing import TaskEnvironment
from conveyor_engine.tasktypes.errors import failure_of
from conveyor_engine.tasktypes.registry import Provider, Registry, TaskTypeLoadError
from conveyor_engine.worker.worker import task_threads


class Text(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str = ""


class Digest(BaseModel):
    digest: str
    size: int


class PaymentError(NonRetryableError):
    pass


class CardDeclined(PaymentError):
    pass


class GatewayDown(RetryableError):
    pass


# ----------------------------------------------------------------------- errors (a table)


@pytest.mark.parametrize(("exc", "expected"), [
    (RetryableError("busy", retry_after=2), Failed("busy", True, "RetryableError",
                                                   retry_after=2.0)),
    (RetryableError("busy", retry_after=timedelta(minutes=1)),
     Failed("busy", True, "RetryableError", retry_after=60.0)),
    (NonRetryableError("bad card"), Failed("bad card", False, "NonRetryableError")),
    (CardDeclined("declined"), Failed("declined", False, "CardDeclined",
                                      kinds=("PaymentError", "NonRetryableError"))),
    (GatewayDown("down", retry_after=0), Failed("down", True, "GatewayDown", retry_after=0.0,
                                                kinds=("RetryableError",))),
    (ValueError("nope"), Failed("ValueError: nope", True, "ValueError")),
    (ConnectionRefusedError(), Failed("ConnectionRefusedError", True, "ConnectionRefusedError",
                                      kinds=("ConnectionError", "OSError"))),
])
def test_failure_of(exc: Exception, expected: Failed) -> None:
    assert failure_of(exc) == expected


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf"), "2", True])
def test_retry_after_must_be_seconds(bad: object) -> None:
    with pytest.raises(ValueError, match="retry_after"):
        RetryableError("x", retry_after=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(("retry_on", "kind", "kinds", "matches"), [
    (["CardDeclined"], "CardDeclined", ("PaymentError",), True),
    (["PaymentError"], "CardDeclined", ("PaymentError",), True),
    (["RetryableError"], "GatewayDown", ("RetryableError",), True),
    (["OtherError"], "CardDeclined", ("PaymentError",), False),
    (["HeartbeatTimeout"], "HeartbeatTimeout", (), True),
    (None, "Anything", (), True),
])
def test_retry_on_names_sdk_error_classes(retry_on, kind, kinds, matches) -> None:
    assert retry_on_matches(retry_on, kind=kind, status_code=None, kinds=kinds) is matches
    for entry in retry_on or []:
        assert retry_on_problem(entry) is None


# ------------------------------------------------------------------------- the decorator


@pytest.mark.parametrize(("kwargs", "error"), [
    ({"name": "Bad Name", "params": Text}, "name: 'Bad Name' is not a valid task type"),
    ({"name": "ok", "params": dict}, "params: expected a pydantic model class"),
    ({"name": "ok", "params": Text, "outputs": 3}, "outputs: expected a pydantic model"),
    ({"name": "ok", "params": Text, "heartbeat_timeout": 0}, "heartbeat_timeout: expected"),
])
def test_bad_declarations_name_the_argument(kwargs: dict, error: str) -> None:
    with pytest.raises((ValueError, TypeError), match=error):
        task_type(**kwargs)


def test_a_function_takes_params_and_maybe_ctx() -> None:
    with pytest.raises(TypeError, match=r"must take \(params\) or \(params, ctx\)"):
        task_type(name="three", params=Text)(lambda a, b, c: None)
    one = task_type(name="one", params=Text)(lambda params: {"t": params.text})
    assert one(Text(text="x")) == {"t": "x"}  # still callable as the function
    assert "one" in repr(one)


async def test_outputs_are_validated_naming_the_field() -> None:
    @task_type(name="digest", params=Text, outputs=Digest)
    async def wrong(params: Text, ctx: TaskContext) -> dict:
        return {"digest": "abc", "size": "large"}

    outcome = await TaskEnvironment().run(wrong, {})
    assert isinstance(outcome, Failed) and not outcome.retryable
    assert outcome.kind == "InvalidOutputs"
    assert "outputs.size: Input should be a valid integer" in outcome.error


@pytest.mark.parametrize(("returned", "outcome"), [
    (None, Succeeded({})),
    ({"a": 1}, Succeeded({"a": 1})),
    (Text(text="x"), Succeeded({"text": "x"})),
    (Failed("own", retryable=False), Failed("own", retryable=False)),
    (["a"], Failed("outputs: 'shape' returned list; a task function returns a dict, a "
                   "pydantic model or None", retryable=False, kind="InvalidOutputs")),
])
async def test_what_a_function_returns(returned: object, outcome: object) -> None:
    shape = task_type(name="shape", params=Text)(lambda params, ctx: returned)
    assert await TaskEnvironment().run(shape, {}) == outcome


# ------------------------------------------------------------- context, heartbeats, cancel


async def test_context_identity_and_idempotency_key() -> None:
    seen = []
    probe = task_type(name="probe", params=Text)(
        lambda params, ctx: seen.append((ctx.execution_id, ctx.task_name, ctx.attempt,
                                         ctx.idempotency_key)))
    for attempt in (1, 2):
        await TaskEnvironment(execution_id="e-1", task_name="pay", attempt=attempt).run(
            probe, {})
    assert seen == [("e-1", "pay", 1, "e-1/pay"), ("e-1", "pay", 2, "e-1/pay")]


async def test_heartbeat_timeout_stops_a_silent_function() -> None:
    @task_type(name="silent", params=Text, heartbeat_timeout=0.2)
    async def silent(params: Text, ctx: TaskContext) -> None:
        await asyncio.sleep(30)

    started = time.monotonic()
    outcome = await TaskEnvironment().run(silent, {})
    assert time.monotonic() - started < 5
    assert isinstance(outcome, Failed)
    assert (outcome.retryable, outcome.kind) == (True, "HeartbeatTimeout")


async def test_heartbeats_keep_a_function_alive_past_its_heartbeat_timeout() -> None:
    @task_type(name="chatty", params=Text, heartbeat_timeout=0.2)
    def chatty(params: Text, ctx: TaskContext) -> dict:
        deadline = time.monotonic() + 0.8
        while time.monotonic() < deadline:
            ctx.heartbeat("working")
            ctx.cancelled.wait(0.05)
        return {"done": True}

    env = TaskEnvironment()
    assert await env.run(chatty, {}) == Succeeded({"done": True})
    assert len(env.heartbeats) >= 4


async def test_a_plain_function_is_told_of_its_timeout() -> None:
    told = asyncio.Event()
    loop = asyncio.get_running_loop()

    @task_type(name="sleepy", params=Text)
    def sleepy(params: Text, ctx: TaskContext) -> None:
        if ctx.cancelled.wait(30):  # an interruptible sleep
            loop.call_soon_threadsafe(told.set)
            ctx.raise_if_cancelled()

    outcome = await TaskEnvironment(timeout=timedelta(seconds=0.2)).run(sleepy, {})
    assert outcome == Failed("timeout: attempt took longer than 0.2s", True, "Timeout")
    await asyncio.wait_for(told.wait(), 5)


async def test_an_async_function_is_interrupted_by_cancel() -> None:
    cleaned = []

    @task_type(name="long", params=Text)
    async def long(params: Text, ctx: TaskContext) -> None:
        try:
            ctx.heartbeat(1)
            await asyncio.sleep(30)
        finally:
            cleaned.append(ctx.cancelled.is_set())

    env = TaskEnvironment()
    env.on_heartbeat = lambda details: env.cancel("execution cancelled")
    assert await env.run(long, {}) == Failed("cancelled: execution cancelled", False)
    assert cleaned == [True]


# ------------------------------------------------------------------- registry, entry points


def test_duplicate_names_name_both_providers() -> None:
    registry = Registry()
    one = task_type(name="dup", params=Text)(lambda params: None)
    registry.register(one, Provider("dup = a.mod:one", "pkg-a", "1.0"))
    with pytest.raises(TaskTypeLoadError) as raised:
        registry.register(one, Provider("dup = b.mod:two", "pkg-b", "2.0"))
    assert str(raised.value) == (
        "task type 'dup' is provided twice: by entry point 'dup = a.mod:one' (pkg-a 1.0) "
        "and by entry point 'dup = b.mod:two' (pkg-b 2.0); uninstall one")


@pytest.mark.parametrize(("value", "name", "error"), [
    ("no_such_module_xyz:thing", "thing",
     "entry point 'thing = no_such_module_xyz:thing' (code): importing module "
     "'no_such_module_xyz' failed: ModuleNotFoundError: No module named 'no_such_module_xyz'"),
    ("json:dumps", "dumps", "is not a task type"),
    ("conveyor_engine.tasktypes.set:SetTask", "other",
     "the entry point is named 'other' but its task type is named 'set'"),
])
def test_broken_entry_points_say_which_and_why(value: str, name: str, error: str) -> None:
    ep = metadata.EntryPoint(name=name, value=value, group=tasktypes.ENTRY_POINT_GROUP)
    with pytest.raises(TaskTypeLoadError, match=error.replace("(", r"\(").replace(")", r"\)")):
        Registry().load_entry_points([ep])


def test_installed_types_come_from_entry_points_with_their_versions() -> None:
    described = {d["name"]: d for d in tasktypes.load().describe()}
    assert {"http", "set", "wait", "checksum", "word-count"} <= set(described)
    assert (described["http"]["package"], described["checksum"]["package"]) == (
        "conveyor", "conveyor-example-tasks")
    assert described["checksum"]["paramsSchema"]["required"] == ["text"]
    assert described["word-count"]["outputsSchema"]["title"] == "WordCountOutputs"


# --------------------------------------------------------- built-in types through the harness


async def test_set_through_the_harness() -> None:
    env = TaskEnvironment(max_output_bytes=64)
    assert await env.outputs(tasktypes.get("set"), {"a": [1, 2]}) == {"a": [1, 2]}
    outcome = await env.run(tasktypes.get("set"), {"big": "x" * 100})
    assert isinstance(outcome, Failed) and "CONVEYOR_MAX_OUTPUT_BYTES" in outcome.error


async def test_wait_through_the_harness() -> None:
    wait = tasktypes.get("wait")
    first = await TaskEnvironment().run(wait, {"duration": "90s"})
    assert isinstance(first, Suspended)
    assert first.until > datetime.now(UTC) + timedelta(seconds=80)
    resumed = TaskEnvironment(resumed_from=first.until)
    assert await resumed.outputs(wait, {"duration": "90s"}) == {"waitedSeconds": 90.0}
    bad = await TaskEnvironment().run(wait, {"duration": "soon"})
    assert isinstance(bad, Failed) and bad.error.startswith("params.duration:")


@pytest.mark.parametrize(("concurrency", "threads"), [(1, 5), (12, 16), (32, 36),
                                                      (10_000, 10_004)])
def test_plain_functions_get_a_thread_per_slot_and_spares(concurrency: int,
                                                          threads: int) -> None:
    assert task_threads(concurrency) == threads


def test_thread_pool_size_refuses_no_slots() -> None:
    with pytest.raises(ValueError, match="concurrency: expected at least 1, got 0"):
        task_threads(0)
