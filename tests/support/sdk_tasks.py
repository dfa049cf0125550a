"""Task types for the SDK's integration tests, installed into test workers as entry points
of a distribution written on the fly (:func:`install_into`)."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from conveyor_engine.sdk import NonRetryableError, RetryableError, TaskContext, task_type


class Marker(BaseModel):
    """``marker``: a file the function writes what it saw into (read by the test)."""

    model_config = ConfigDict(extra="forbid")
    marker: str = ""
    seconds: float = 0.0


def _mark(params: Marker, text: str) -> None:
    if params.marker:
        with Path(params.marker).open("a") as file:
            file.write(text + "\n")


class Declined(NonRetryableError):
    """A failure retrying cannot fix."""


@task_type(name="sdk-test.refuse", params=Marker)
async def refuse(params: Marker, ctx: TaskContext) -> None:
    """Always fails, not retryable."""
    raise Declined(f"declined on attempt {ctx.attempt}")


@task_type(name="sdk-test.flaky", params=Marker)
async def flaky(params: Marker, ctx: TaskContext) -> dict:
    """Fails retryably on the first attempt asking for ``seconds`` of delay; then succeeds."""
    if ctx.attempt == 1:
        raise RetryableError("not yet", retry_after=params.seconds)
    return {"attempt": ctx.attempt, "key": ctx.idempotency_key}


@task_type(name="sdk-test.long", params=Marker)
async def long(params: Marker, ctx: TaskContext) -> dict:
    """Heartbeats every 0.1 s for ``seconds``; writes ``cancelled`` when interrupted."""
    loop = asyncio.get_running_loop()
    deadline, beats = loop.time() + params.seconds, 0
    _mark(params, "started")
    try:
        while loop.time() < deadline:
            ctx.heartbeat({"beats": beats})
            beats += 1
            await asyncio.sleep(0.1)
    except asyncio.CancelledError:
        _mark(params, "cancelled")
        raise
    return {"beats": beats}


@task_type(name="sdk-test.plain", params=Marker)
def plain(params: Marker, ctx: TaskContext) -> dict:
    """A plain function: waits ``seconds`` on the cancellation flag; writes ``told`` when
    told to stop."""
    _mark(params, "started")
    if ctx.cancelled.wait(params.seconds):
        _mark(params, "told")
        ctx.raise_if_cancelled()
    return {"waited": params.seconds}


@task_type(name="sdk-test.secret", params=Marker)
def secret(params: Marker, ctx: TaskContext) -> dict:
    """Echoes ``ctx.secrets['payments']['token']`` (the worker must redact it) and its
    length (which shows the function saw the value)."""
    token = ctx.secrets["payments"]["token"]
    return {"echo": f"got {token}", "length": len(token)}


class Meeting(BaseModel):
    """``parties`` plain functions meet at one barrier of the worker process; ``seconds``
    is how long each waits for the others."""

    model_config = ConfigDict(extra="forbid")
    barrier: str
    parties: int
    seconds: float = 60.0


_BARRIERS: dict[str, threading.Barrier] = {}
_BARRIERS_LOCK = threading.Lock()


@task_type(name="sdk-test.meet", params=Meeting)
def meet(params: Meeting, ctx: TaskContext) -> dict:
    """A plain function that returns only once ``parties`` of them run at the same time in
    this worker; fails, not retryable, when they do not all arrive within ``seconds``."""
    with _BARRIERS_LOCK:
        barrier = _BARRIERS.setdefault(params.barrier, threading.Barrier(params.parties))
    try:
        arrived = barrier.wait(params.seconds)
    except threading.BrokenBarrierError:
        raise NonRetryableError(f"fewer than {params.parties} plain functions ran at once "
                                f"within {params.seconds:g}s") from None
    return {"arrived": arrived}


TYPES = {"sdk-test.refuse": "refuse", "sdk-test.flaky": "flaky", "sdk-test.long": "long",
         "sdk-test.plain": "plain", "sdk-test.secret": "secret", "sdk-test.meet": "meet"}


def install_into(directory: Path, entry_points: dict[str, str] | None = None,
                 name: str = "conveyor-sdk-test-tasks") -> Path:
    """Write a distribution's metadata (``<name>-0.1.dist-info``) into ``directory`` with
    ``entry_points`` (type name -> ``module:object``; this module's types by default), so a
    process with ``directory`` on ``PYTHONPATH`` loads them. Returns ``directory``."""
    points = entry_points or {t: f"{__name__}:{obj}" for t, obj in TYPES.items()}
    info = directory / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{key} = {value}\n" for key, value in points.items())
    (info / "entry_points.txt").write_text(f"[conveyor.tasktypes]\n{lines}")
    return directory


def _noise(ctx: TaskContext, how: str) -> dict:
    """Writes the ``payments.token`` secret to stdout (once split across two writes),
    stderr and a warning: the worker must redact all of it."""
    import sys
    import warnings

    token = ctx.secrets["payments"]["token"]
    print(f"stdout token {token} ({how})")
    sys.stdout.write(f"split token {token[:5]}")
    sys.stdout.write(f"{token[5:]} ({how})\n")
    print(f"stderr token {token} ({how})", file=sys.stderr)
    warnings.warn(f"warn token {token} ({how})", UserWarning, stacklevel=1)
    return {"how": how}


@task_type(name="sdk-test.noisy", params=Marker)
def noisy(params: Marker, ctx: TaskContext) -> dict:
    """:func:`_noise` from a plain function (a worker thread)."""
    return _noise(ctx, "plain")


@task_type(name="sdk-test.noisy-async", params=Marker)
async def noisy_async(params: Marker, ctx: TaskContext) -> dict:
    """:func:`_noise` from an async function (the worker's loop)."""
    return _noise(ctx, "async")


TYPES.update({"sdk-test.noisy": "noisy", "sdk-test.noisy-async": "noisy_async"})
