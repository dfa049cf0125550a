"""``@task_type``: a task type made from one function, async or plain.

The decorator returns a :class:`FunctionTaskType` instance (still callable as the function
itself, so a team's own code and tests can call it directly). Its ``run``:

* starts the function: an ``async def`` as an asyncio task, a plain ``def`` in a thread of
  ``ctx.resources.threads`` (the worker's pool, one thread per slot; as
  :func:`asyncio.to_thread` does, with the caller's context variables) so it never blocks
  the worker's event loop;
* watches heartbeats when the type declares ``heartbeat_timeout``: past it, the attempt is
  stopped and recorded as a retryable failure of kind ``HeartbeatTimeout``;
* on cancellation (the execution cancelled or deleted, the task's ``timeout``, worker
  shutdown) sets ``ctx.cancelled``; an async function also gets ``CancelledError``, a plain
  one is only told (a thread cannot be interrupted) and gets ``CANCEL_GRACE_SECONDS`` to
  return before the worker moves on without it;
* maps what the function raised onto :class:`~.base.Failed` (:func:`~.errors.failure_of`)
  and what it returned onto :class:`~.base.Succeeded`, validated by ``outputs`` when given.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any, ClassVar

from pydantic import BaseModel, ValidationError

from ..retries import HEARTBEAT_TIMEOUT
from .base import Failed, Outcome, Succeeded, Suspended, TaskContext, TaskType
from .errors import TaskCancelled, failure_of
from .validation import check_type_name, describe_errors

log = logging.getLogger(__name__)

#: Seconds a cancelled function gets to return (a thread to notice ``ctx.cancelled``, a
#: coroutine to run its ``finally`` blocks) before the worker records the attempt without it.
CANCEL_GRACE_SECONDS = 5.0
#: The ``kind`` of a function that returned something its outputs cannot be made of.
INVALID_OUTPUTS = "InvalidOutputs"


class FunctionTaskType(TaskType):
    """A task type around ``function(params, ctx)`` (or ``function(params)``).

    Made by :func:`task_type`, one subclass per function; not instantiated by hand.
    """

    function: ClassVar[Callable[..., Any]]
    is_async: ClassVar[bool]
    takes_context: ClassVar[bool]
    cancel_grace: ClassVar[float] = CANCEL_GRACE_SECONDS

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call the function itself (no validation, no context handling)."""
        return type(self).function(*args, **kwargs)

    def __repr__(self) -> str:
        fn = type(self).function
        return f"<task type {self.name!r} from {fn.__module__}.{fn.__qualname__}>"

    async def run(self, params: BaseModel, ctx: TaskContext) -> Outcome:
        """Run the function once; never raises but ``CancelledError`` (see the module)."""
        call = self._start(params, ctx)
        try:
            alive = await self._watch(call, ctx)
        except asyncio.CancelledError:
            await self._stop(call, ctx, "cancelled")
            raise
        if not alive:
            limit = self.heartbeat_timeout or 0.0
            await self._stop(call, ctx, f"no heartbeat for {limit:g}s")
            return Failed(f"no heartbeat for more than {limit:g}s (the type's heartbeat "
                          f"timeout); the attempt was stopped", retryable=True,
                          kind=HEARTBEAT_TIMEOUT)
        try:
            result = call.result()
        except TaskCancelled as exc:
            return Failed(f"cancelled: {exc}", retryable=False)
        except Exception as exc:
            return failure_of(exc)
        return self.outcome_of(result)

    def outcome_of(self, result: Any) -> Outcome:
        """What the function's return value means.

        An outcome (:class:`Succeeded`, :class:`Failed`, :class:`Suspended`) is kept; with an
        ``Outputs`` model the value (a dict or a model) is validated by it and dumped as JSON
        by alias; without one a dict, a pydantic model or None (no outputs) is accepted.
        Anything else fails, not retryable, naming the field or the type returned.
        """
        if isinstance(result, Succeeded | Failed | Suspended):
            return result
        if self.Outputs is not None:
            data = result.model_dump(by_alias=True) if isinstance(result, BaseModel) else result
            try:
                model = self.Outputs.model_validate(data)
            except ValidationError as exc:
                return Failed(f"outputs of {self.name!r} do not match its outputs model: "
                              f"{describe_errors(exc, 'outputs')}", retryable=False,
                              kind=INVALID_OUTPUTS)
            return Succeeded(model.model_dump(mode="json", by_alias=True))
        if result is None:
            return Succeeded({})
        if isinstance(result, BaseModel):
            return Succeeded(result.model_dump(mode="json", by_alias=True))
        if isinstance(result, Mapping):
            return Succeeded(dict(result))
        return Failed(f"outputs: {self.name!r} returned {type(result).__name__}; a task "
                      f"function returns a dict, a pydantic model or None", retryable=False,
                      kind=INVALID_OUTPUTS)

    def _start(self, params: BaseModel, ctx: TaskContext) -> asyncio.Future:
        fn = type(self).function
        args = (params, ctx) if self.takes_context else (params,)
        if self.is_async:
            return asyncio.ensure_future(fn(*args))
        # Not asyncio.to_thread: the loop's default executor has min(32, cpus + 4) threads,
        # fewer than a worker's slots, so plain functions beyond that would queue, unstarted.
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        loop = asyncio.get_running_loop()
        return asyncio.ensure_future(loop.run_in_executor(ctx.resources.threads, call))

    async def _watch(self, call: asyncio.Future, ctx: TaskContext) -> bool:
        """Wait for ``call``; False when the heartbeat timeout passed first."""
        limit = self.heartbeat_timeout
        if limit is None:
            await asyncio.wait({call})
            return True
        while True:
            idle = ctx.signals.idle_seconds()
            if idle > limit:
                return False
            done, _ = await asyncio.wait({call}, timeout=max(limit - idle, 0.01))
            if done:
                return True

    async def _stop(self, call: asyncio.Future, ctx: TaskContext, reason: str) -> None:
        """Tell the function to stop and give it ``cancel_grace`` seconds to do so."""
        ctx.signals.cancel(reason)
        if self.is_async:
            call.cancel()
        done, _ = await asyncio.wait({call}, timeout=self.cancel_grace)
        if not done:
            log.warning("task type %r did not stop within %gs of %s; the worker moves on "
                        "(a plain function must check ctx.cancelled)", self.name,
                        self.cancel_grace, reason)
            call.add_done_callback(_consume)
        else:
            _consume(call)


def _consume(call: asyncio.Future) -> None:
    """Retrieve a finished call's exception so asyncio does not log it as never retrieved."""
    if not call.cancelled():
        call.exception()


def task_type(
    *,
    name: str,
    params: type[BaseModel],
    outputs: type[BaseModel] | None = None,
    heartbeat_timeout: float | timedelta | None = None,
    honours_timeout: bool = True,
) -> Callable[[Callable[..., Any]], FunctionTaskType]:
    """Make a task type of the decorated function.

    ``name``: the ``type:`` workflows write (lower-case letters, digits, ``-``, ``_``,
    ``.``; starting with a letter, at most 63 characters). ``params``: the pydantic model
    the rendered params are validated against (``extra="forbid"`` makes an unknown key a
    compile-time error). ``outputs``: the model the returned value is validated by (None:
    any dict). ``heartbeat_timeout``: seconds (or a ``timedelta``) the function may go
    without ``ctx.heartbeat()`` (None: no limit). ``honours_timeout``: False for types
    that hold no worker slot while they wait.

    The function is ``fn(params, ctx)`` or ``fn(params)``, ``async def`` or plain ``def``.
    Raises ``ValueError``/``TypeError`` naming the argument for a bad declaration.
    """
    check_type_name(name)
    if not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise TypeError(f"params: expected a pydantic model class, got {params!r}")
    if outputs is not None and not (isinstance(outputs, type) and issubclass(outputs, BaseModel)):
        raise TypeError(f"outputs: expected a pydantic model class or None, got {outputs!r}")
    limit = heartbeat_timeout.total_seconds() if isinstance(heartbeat_timeout, timedelta) \
        else heartbeat_timeout
    if limit is not None and not limit > 0:
        raise ValueError(f"heartbeat_timeout: expected seconds > 0, got {heartbeat_timeout!r}")

    def decorate(fn: Callable[..., Any]) -> FunctionTaskType:
        if not callable(fn):
            raise TypeError(f"@task_type(name={name!r}) decorates a function, not {fn!r}")
        positional = [p for p in inspect.signature(fn).parameters.values()
                      if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if not 1 <= len(positional) <= 2:
            raise TypeError(f"@task_type(name={name!r}): {fn.__qualname__} must take "
                            f"(params) or (params, ctx), not {len(positional)} arguments")
        cls = type(f"TaskType_{fn.__name__}", (FunctionTaskType,), {
            "__doc__": fn.__doc__, "__module__": fn.__module__,
            "name": name, "Params": params, "Outputs": outputs,
            "honours_timeout": honours_timeout, "heartbeat_timeout": limit,
            "function": staticmethod(fn), "is_async": inspect.iscoroutinefunction(fn),
            "takes_context": len(positional) == 2,
        })
        return cls()

    return decorate
