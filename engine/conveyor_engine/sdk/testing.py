"""A test harness for task types: one attempt with a fake context, no servers.

In the spirit of Temporal's ``ActivityEnvironment``: set the attempt's identity, run the
type through the same path the worker uses (:func:`~conveyor_engine.tasktypes.running.
run_attempt`: params validation, timeout, error mapping, outputs validation), record the
heartbeats, cancel it mid-run.

Secrets go through the worker's own pieces: ``ctx.secrets`` is the worker's view (a Secret
not given raises ``SecretNotMounted``, a missing key ``SecretNotFound``; a value under 4
characters is withheld, as a worker withholds it: :func:`~conveyor_engine.worker.mounts.
split_short`), and the outcome is redacted by the worker's redactor
(:func:`~conveyor_engine.worker.outcome.redact_outcome`), so what :meth:`TaskEnvironment.run`
returns is what a worker would record.

```python
env = TaskEnvironment(attempt=2)
outcome = await env.run(word_count, {"text": "a b c"})
assert outcome == Succeeded({"words": 3})
```
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import httpx
from pydantic import BaseModel

from ..egress import EgressPolicy
from ..redaction import Redactor
from ..tasktypes.base import Failed, Outcome, Resources, Succeeded, TaskContext, TaskType
from ..tasktypes.http_egress import guarded_client
from ..tasktypes.running import run_attempt
from ..tasktypes.signals import Signals
from ..worker.mounts import SecretsView, split_short
from ..worker.outcome import redact_outcome


class TaskEnvironment:
    """Runs task types one attempt at a time with a context you choose.

    ``execution_id``, ``task_name``, ``attempt``, ``resumed_from``, ``locks`` and
    ``secrets`` (name -> key -> value, as a worker would have them mounted) are what the
    context says; ``timeout`` is the task's timeout (applied as
    the worker does); ``max_output_bytes`` the worker's cap; ``http`` the client an
    ``http`` task uses (one is made per run and closed after, when None).

    After a run, :attr:`heartbeats` holds the details of every heartbeat in order and
    :attr:`context` the context the attempt saw. :attr:`on_heartbeat`, when set, is called
    with each heartbeat's details (from the function's thread, for a plain function): a
    test cancels there to cancel at a known point. :attr:`redactor` is the worker's
    redactor for ``secrets`` (apply it to what a test captured itself, such as logs).
    """

    def __init__(self, *, execution_id: str = "test-execution", task_name: str = "task",
                 attempt: int = 1, resumed_from: datetime | None = None,
                 timeout: timedelta | None = None, max_output_bytes: int = 1024 * 1024,
                 http: httpx.AsyncClient | None = None,
                 locks: Mapping[str, int] | None = None,
                 secrets: Mapping[str, Mapping[str, str]] | None = None) -> None:
        self.execution_id = execution_id
        self.task_name = task_name
        self.attempt = attempt
        self.resumed_from = resumed_from
        self.timeout = timeout
        self.max_output_bytes = max_output_bytes
        self.http = http
        self.locks = dict(locks or {})
        self.secrets = {k: dict(v) for k, v in (secrets or {}).items()}
        self.heartbeats: list[Any] = []
        self.on_heartbeat: Callable[[Any], None] | None = None
        self.context: TaskContext | None = None
        self._lock = threading.Lock()
        self._running: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._cancel_reason: str | None = None

    async def run(self, task: TaskType, params: Mapping[str, Any] | BaseModel) -> Outcome:
        """One attempt of ``task`` with ``params`` (a dict as rendered, or a model).

        Returns the outcome the worker would record, secret values replaced by their
        markers (``[redacted secret payments.token]``). A :meth:`cancel` during the run
        returns ``Failed("cancelled: <reason>", retryable=False)``, as the worker records a
        cancelled attempt.
        """
        return redact_outcome(await self._run(task, params), self.redactor)

    @property
    def redactor(self) -> Redactor:
        """The redactor a worker holding :attr:`secrets` would use."""
        return Redactor(split_short(self.secrets)[0])

    async def _run(self, task: TaskType, params: Mapping[str, Any] | BaseModel) -> Outcome:
        if isinstance(params, BaseModel):
            params = params.model_dump(by_alias=True)
        self.heartbeats.clear()
        self._cancel_reason = None
        # The worker's client (egress guard, redirects followed) unless the test brings one,
        # so a task behaves here as it will on a worker.
        own = self.http is None
        client = guarded_client(EgressPolicy(), timeout=30.0) if own else self.http
        ctx = TaskContext(
            self.execution_id, self.task_name, self.attempt,
            Resources(http=client, max_output_bytes=self.max_output_bytes),
            resumed_from=self.resumed_from, locks=dict(self.locks),
            signals=Signals(on_heartbeat=self._heartbeat),
            secrets=SecretsView(*split_short(self.secrets)))
        self.context = ctx
        self._loop = asyncio.get_running_loop()
        self._running = asyncio.ensure_future(run_attempt(task, params, ctx, self.timeout))
        try:
            return await self._running
        except asyncio.CancelledError:
            if self._cancel_reason is None:
                raise  # the test itself was cancelled
            return Failed(f"cancelled: {self._cancel_reason}", retryable=False)
        finally:
            self._running = None
            if own:
                await client.aclose()

    async def outputs(self, task: TaskType, params: Mapping[str, Any] | BaseModel,
                      ) -> dict[str, Any]:
        """:meth:`run`, then the outputs; ``AssertionError`` with the outcome when the
        attempt did not succeed."""
        outcome = await self.run(task, params)
        if not isinstance(outcome, Succeeded):
            raise AssertionError(f"{task.name!r} did not succeed: {outcome!r}")
        return outcome.outputs

    def cancel(self, reason: str = "cancelled by the test") -> None:
        """Cancel the running attempt as the worker does when its execution is cancelled.
        Safe from any thread (a plain function's ``on_heartbeat``); no-op when idle."""
        loop, running = self._loop, self._running
        if running is None or loop is None:
            return
        self._cancel_reason = reason
        try:
            on_loop = asyncio.get_running_loop() is loop
        except RuntimeError:  # no loop in this thread: a plain function's
            on_loop = False
        if on_loop:
            running.cancel()
        else:
            loop.call_soon_threadsafe(running.cancel)

    def _heartbeat(self, details: Any) -> None:
        with self._lock:
            self.heartbeats.append(details)
        if self.on_heartbeat is not None:
            self.on_heartbeat(details)
