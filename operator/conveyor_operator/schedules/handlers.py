"""kopf handlers of Schedules: thin glue handing each Schedule to its timer
(:class:`.runner.ScheduleRunner`), and changes of the runs they created to it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kopf

from ..resources import EXECUTIONS, GROUP, SCHEDULES, VERSION
from .runs import SCHEDULE_LABEL


@kopf.on.resume(GROUP, VERSION, SCHEDULES)
@kopf.on.create(GROUP, VERSION, SCHEDULES)
@kopf.on.update(GROUP, VERSION, SCHEDULES, field="spec")
async def schedule_changed(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    """Start the Schedule's timer, or give it the changed spec; it decides and writes status
    itself (on operator start: every tick missed since ``status.lastTickTime``)."""
    memo.schedules.upsert(dict(body))


@kopf.on.event(GROUP, VERSION, SCHEDULES)
async def schedule_event(event: Mapping[str, Any], uid: str, memo: kopf.Memo,
                         **_: Any) -> None:
    """Stop the timer the moment the API says the Schedule is gone (Schedules carry no
    finalizer; their runs are garbage-collected through their owner reference)."""
    if event.get("type") == "DELETED":
        await memo.schedules.remove(uid)


@kopf.on.event(GROUP, VERSION, EXECUTIONS, labels={SCHEDULE_LABEL: kopf.PRESENT})
async def scheduled_run_event(event: Mapping[str, Any], body: kopf.Body, memo: kopf.Memo,
                              **_: Any) -> None:
    """A run some Schedule created changed: its timer updates ``status.active`` and the
    history limits when the run's phase changed."""
    if "schedules" in memo:
        memo.schedules.run_changed(dict(body), deleted=event.get("type") == "DELETED")
