"""The SDK's harness handles secrets as a worker does: the same view (errors, short values
withheld) and the same outcome redaction, so a unit test shows what a worker would record."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from conveyor_engine.sdk import Failed, NonRetryableError, Succeeded, TaskContext, task_type
from conveyor_engine.sdk.testing import TaskEnvironment

SECRETS = {"payments": {"token": "SuperSecretTok3n"}, "short": {"pin": "abc"}}
MARKER = "[redacted secret payments.token]"


class Read(BaseModel):
    secret: str = "payments"
    key: str = "token"
    fail: bool = False


def echo(params: Read, ctx: TaskContext) -> dict:
    """Reads one key; returns it (in a key too), or fails with it in the message."""
    value = ctx.secrets[params.secret][params.key]
    if params.fail:
        raise NonRetryableError(f"gateway said no to {value}")
    return {"echo": f"got {value}", value: [value], "length": len(value)}


@task_type(name="harness-test.read", params=Read)
def read(params: Read, ctx: TaskContext) -> dict:
    """:func:`echo` as a plain function."""
    return echo(params, ctx)


@task_type(name="harness-test.read-async", params=Read)
async def read_async(params: Read, ctx: TaskContext) -> dict:
    """:func:`echo` as an async function."""
    return echo(params, ctx)


@pytest.mark.parametrize("task", [read, read_async])
@pytest.mark.parametrize(("params", "expected"), [
    ({}, Succeeded({"echo": f"got {MARKER}", MARKER: [MARKER], "length": 16})),
    ({"fail": True}, Failed(f"gateway said no to {MARKER}", retryable=False,
                            kind="NonRetryableError")),
    ({"secret": "nope"}, Failed(
        "secret 'nope' is not mounted on this worker (mounted: payments, short); list it in "
        "the WorkerPool's spec.secrets (if it is listed, this worker's pod predates that: the "
        "attempt is retried under the task's retry policy)", retryable=True,
        kind="SecretNotMounted", kinds=("RetryableError", "KeyError", "LookupError"))),
    ({"key": "nope"}, Failed("secret 'payments' has no key 'nope' (keys: token)",
                             retryable=False, kind="SecretNotFound",
                             kinds=("NonRetryableError", "KeyError", "LookupError"))),
    ({"secret": "short", "key": "pin"}, Failed(
        "secret 'short' key 'pin' is shorter than 4 characters, too short to be redacted "
        "safely, so workers do not provide it", retryable=False, kind="SecretNotFound",
        kinds=("NonRetryableError", "KeyError", "LookupError"))),
])
async def test_the_harness_records_what_a_worker_would(task, params, expected) -> None:
    outcome = await TaskEnvironment(secrets=SECRETS).run(task, params)
    assert outcome == expected
    assert "SuperSecretTok3n" not in repr(outcome)


def test_the_harness_redactor_is_the_workers() -> None:
    env = TaskEnvironment(secrets=SECRETS)
    assert env.redactor.text("log: SuperSecretTok3n abc") == f"log: {MARKER} abc"
