"""Running one attempt of any task type: validate the rendered params, apply the task's
timeout, turn what escapes into an outcome.

The one run path: the worker (:mod:`conveyor_engine.worker.execute`) and the SDK's test
harness (:class:`conveyor_engine.sdk.testing.TaskEnvironment`) both call
:func:`run_attempt`, for built-in and installed types alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from typing import Any

from pydantic import ValidationError

from ..retries import TIMEOUT
from .base import Failed, Outcome, TaskContext, TaskType
from .errors import failure_of
from .validation import describe_errors


async def run_attempt(task_type: TaskType, rendered: Any, ctx: TaskContext,
                      timeout: timedelta | None = None) -> Outcome:
    """Validate ``rendered`` params against ``task_type.Params`` and run one attempt.

    Invalid params: ``Failed`` naming each field (``params.url: ...``), not retryable.
    ``timeout`` (the task's own, when the type honours timeouts) bounds the attempt: past
    it the run is cancelled and the outcome is a retryable ``Failed`` of kind ``Timeout``;
    ``ctx.timeout`` carries it to the type. An exception escaping ``run`` is a failure
    (:func:`~.errors.failure_of`). Raises only ``CancelledError`` (the attempt was
    cancelled from outside).
    """
    try:
        params = task_type.Params.model_validate(rendered)
    except ValidationError as exc:
        return Failed(describe_errors(exc, "params"), retryable=False)
    limit = timeout if timeout is not None and task_type.honours_timeout else None
    if limit is not None:
        # The type sees the limit too, to size its own I/O timeouts (http).
        ctx = dataclasses.replace(ctx, timeout=limit)
    deadline = asyncio.timeout(limit.total_seconds() if limit is not None else None)
    try:
        async with deadline:
            return await task_type.run(params, ctx)
    except TimeoutError as exc:
        if limit is None or not deadline.expired():
            return failure_of(exc)  # raised by the type itself, not the task's timeout
        return Failed(f"timeout: attempt took longer than {limit.total_seconds():g}s",
                      retryable=True, kind=TIMEOUT)
    except Exception as exc:  # a task type bug must not kill the worker: record it
        return failure_of(exc)
