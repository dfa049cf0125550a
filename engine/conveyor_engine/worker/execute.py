"""Running one attempt: evaluate ``when``, render params, then the one run path of every
task type (:func:`~conveyor_engine.tasktypes.running.run_attempt`: validate, timeout,
errors).

Every expected problem becomes an outcome rather than an exception: bad expressions and
params are not retryable (the same input fails the same way), timeouts and unexpected
errors are.
"""

from __future__ import annotations

from .. import tasktypes
from ..compiler import CompiledTask
from ..expressions import ExpressionError
from ..progress import SkippedByCondition
from ..tasktypes.base import Failed, Outcome, TaskContext
from ..tasktypes.running import run_attempt


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
    try:
        task_type = tasktypes.get(task.type)
    except KeyError:
        return Failed(f'task type "{task.type}" is not installed on this worker (installed: '
                      f'{", ".join(tasktypes.known())})', retryable=False)
    return await run_attempt(task_type, rendered, ctx, task.timeout)
