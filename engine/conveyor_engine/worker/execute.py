"""Running one attempt: evaluate ``when``, render params, validate, run with a timeout.

Every expected problem becomes an outcome rather than an exception: bad expressions and
params are not retryable (the same input fails the same way), timeouts and unexpected
errors are.
"""

from __future__ import annotations

import asyncio
import dataclasses

from pydantic import ValidationError

from .. import tasktypes
from ..compiler import CompiledTask
from ..expressions import ExpressionError
from ..progress import SkippedByCondition
from ..retries import TIMEOUT
from ..tasktypes.base import Failed, Outcome, TaskContext


async def execute(
    task: CompiledTask, context: dict, ctx: TaskContext
) -> Outcome | SkippedByCondition:
    """Run one attempt of ``task`` with expression ``context``; never raises but on cancel."""
    if task.when is not None and ctx.resumed_from is None:
        try:
            if not task.when.evaluate(context):
                return SkippedByCondition(task.spec.when or "")
        except ExpressionError as exc:
            return Failed(str(exc), retryable=False)
    try:
        rendered = task.params.render(context)
    except ExpressionError as exc:
        return Failed(str(exc), retryable=False)
    task_type = tasktypes.get(task.type)
    try:
        params = task_type.Params.model_validate(rendered)
    except ValidationError as exc:
        return Failed(_describe(exc), retryable=False)
    try:
        if task.timeout is not None and task_type.honours_timeout:
            # The type sees the limit too, to size its own I/O timeouts (http).
            ctx = dataclasses.replace(ctx, timeout=task.timeout)
            async with asyncio.timeout(task.timeout.total_seconds()):
                return await task_type.run(params, ctx)
        return await task_type.run(params, ctx)
    except TimeoutError:
        seconds = task.timeout.total_seconds() if task.timeout else 0
        return Failed(f"timeout: attempt took longer than {seconds:g}s", retryable=True,
                      kind=TIMEOUT)
    except Exception as exc:  # a task type bug must not kill the worker: record it
        return Failed(f"{type(exc).__name__}: {exc}", retryable=True,
                      kind=type(exc).__name__)


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        # Our validators name their field already ("duration: ..."); say it once.
        message = message.removeprefix(f"{where}: ")
        parts.append(f"params.{where}: {message}")
    return "; ".join(parts)
