"""Carrying out what an Execution's lifecycle fields ask (:mod:`.lifecycle` decides):
the engine calls, the Events, and handing the run back to the follower after a retry.

Every step is idempotent against the engine's recorded state, so a handler retried by
kopf, a replayed watch event or an operator restart repeats nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from conveyor_engine.api import Engine, ExecutionState

from .follower import ExecutionFollower
from .kube import Kube, ObjectRef
from .lifecycle import Action, Lifecycle, RunFacts, lifecycle_actions
from .reaper import ExecutionReaper
from .reasons import EventReason
from .resources import ExecutionSpec
from .status import lifecycle_event

log = logging.getLogger(__name__)

#: The reason the engine records on a run cancelled through ``spec.cancel``.
CANCEL_REASON = "cancelled: spec.cancel is true"


@dataclass(frozen=True, slots=True)
class RunControl:
    """What applying a lifecycle change needs: the engine, the API, the follower (which
    writes the status) and the reaper (which holds TTL deletions)."""

    engine: Engine
    kube: Kube
    follower: ExecutionFollower
    reaper: ExecutionReaper

    async def apply(self, ref: ObjectRef, execution_id: str, spec: ExecutionSpec, *,
                    generation: int | None, status: dict[str, Any],
                    state: ExecutionState | None = None) -> list[Action]:
        """Bring the run ``execution_id`` in line with ``spec``; return the actions taken.

        ``status`` is the object's current status (the follower's starting point after a
        retry); ``state`` the run as just read, if the caller has it. Raises what the
        engine raises when a store is down (the caller's retry applies it later).
        """
        state = state or await self.engine.get(execution_id)
        if state is None:
            return []
        wanted = lifecycle_actions(Lifecycle(spec.suspend, spec.cancel, spec.retry),
                                   RunFacts(state.phase, state.suspended, state.retries))
        done = []
        for action in wanted:
            if await self._do(action, ref, execution_id, spec, generation, status):
                done.append(action)
                log.info("execution %s/%s: %s", ref.namespace, ref.name, action)
        return done

    async def _do(self, action: Action, ref: ObjectRef, execution_id: str,
                  spec: ExecutionSpec, generation: int | None, status: dict[str, Any]) -> bool:
        if action is Action.CANCEL:
            # The follower sees the change and posts the Cancelled Event with the status.
            return await self.engine.cancel(execution_id, CANCEL_REASON)
        if action is Action.SUSPEND:
            if await self.engine.suspend(execution_id):
                await self.kube.post_event(ref, lifecycle_event(
                    EventReason.SUSPENDED, "spec.suspend is true: no new task starts; "
                    "tasks already running finish"))
                return True
            return False
        if action is Action.RESUME:
            if await self.engine.resume(execution_id):
                await self.kube.post_event(ref, lifecycle_event(
                    EventReason.RESUMED, "spec.suspend is false: the run continues"))
                return True
            return False
        retried = await self.engine.retry(execution_id, suspended=spec.suspend)
        if retried is None:
            return False
        self.reaper.forget(ref.uid)  # open again: its TTL counts from its next finish
        self.follower.restarted(execution_id, ref, generation, status)
        names = ", ".join(retried.tasks[:10]) + (", ..." if len(retried.tasks) > 10 else "")
        await self.kube.post_event(ref, lifecycle_event(
            EventReason.RETRIED, f"retry {retried.retries} from the failed step: "
            f"{len(retried.tasks)} task(s) run again ({names}); tasks that succeeded keep "
            f"their outputs"))
        return True
