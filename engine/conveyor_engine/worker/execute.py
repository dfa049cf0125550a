"""Running one attempt: evaluate ``when``, render params, then the one run path of every
task type (:func:`~conveyor_engine.tasktypes.running.run_attempt`: validate, timeout,
errors).

The expressions see ``secrets`` (the values of ``ctx.secrets``, the Secrets the pool
mounts: :mod:`.mounts`) only here, on the worker, and only when they read it; a Secret or
key they name that the worker lacks fails the attempt, naming both, as the SDK's
``ctx.secrets`` does (the same errors: a Secret not mounted is retried under the task's
policy, a missing or withheld key is not). Rendered params are
never stored, and whatever the attempt produces is redacted before it is
(:func:`~.outcome.outcome_record`).

Every expected problem becomes an outcome rather than an exception: bad expressions and
params are not retryable (the same input fails the same way), timeouts and unexpected
errors are.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import tasktypes
from ..compiler import CompiledTask
from ..expressions import ExpressionError
from ..expressions.reads import union_reads
from ..progress import SkippedByCondition
from ..tasktypes.base import Failed, Outcome, TaskContext
from ..tasktypes.errors import failure_of
from ..tasktypes.running import run_attempt
from .mounts import missing


def secrets_context(task: CompiledTask, context: dict,
                    secrets: Mapping[str, Mapping[str, str]]) -> dict | Failed:
    """``context`` with ``secrets`` (name -> key -> value) added when the task's params or
    ``when`` read them (unchanged otherwise), or the ``Failed`` of the first Secret or key
    they name that ``secrets`` lacks (:func:`.mounts.missing`: kind ``SecretNotMounted``,
    retryable, or ``SecretNotFound``, not). Pure."""
    expressions = [*task.params.expressions, *([task.when.expression] if task.when else [])]
    reads = union_reads(e._reads for e in expressions)
    if "secrets" not in reads:
        return context
    problem = missing(reads["secrets"], secrets, getattr(secrets, "short", frozenset()))
    if problem is not None:
        return failure_of(problem)
    return {**context, "secrets": {s: dict(keys) for s, keys in secrets.items()}}


async def execute(
    task: CompiledTask, context: dict, ctx: TaskContext
) -> Outcome | SkippedByCondition:
    """Run one attempt of ``task`` with expression ``context``; never raises but on cancel."""
    prepared = secrets_context(task, context, ctx.secrets)
    if isinstance(prepared, Failed):
        return prepared
    context = prepared
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
