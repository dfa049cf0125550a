"""``conveyor_executions_waiting{reason, pool}``: how many Executions wait, and why.

Waiting says why (issue 10) on each Execution's status; this gauge says it in aggregate,
for dashboards and alerts. Two sources: the engine (submitted runs queued in their
concurrency group, ``ConcurrencyLimit``, or suspended, ``Suspended``; one aggregate query)
and the operator's own waiting list (Executions not submitted yet: ``WorkflowNotFound``,
``WorkflowNotReady``, ``PoolNotFound``, ``PoolNotReady``; their pool is not known before
their Workflow is, so their ``pool`` label is empty). Labels are bounded: reasons are the
operator's constants and pools the WorkerPools; never an execution id. Refreshed every
``interval`` seconds by the leader; label sets that no longer occur are set to 0.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping

from prometheus_client import Gauge

from conveyor_engine.api import Engine

log = logging.getLogger(__name__)

WAITING = Gauge("conveyor_executions_waiting",
                "Executions waiting to start or to go on, by reason (ConcurrencyLimit, "
                "Suspended, WorkflowNotFound, WorkflowNotReady, PoolNotFound, PoolNotReady) "
                "and pool (empty before submission).", ["reason", "pool"])


def waiting_samples(engine_counts: Mapping[tuple[str, str], int],
                    unsubmitted: Iterable[str],
                    seen: Iterable[tuple[str, str]] = ()) -> dict[tuple[str, str], int]:
    """The gauge's samples: ``engine_counts`` by ``(reason, pool)``, plus one per
    not-yet-submitted Execution's reason under pool ``""``, plus 0 for every label set
    in ``seen`` (published before) that no longer occurs."""
    samples: Counter[tuple[str, str]] = Counter(dict(engine_counts))
    samples.update((reason, "") for reason in unsubmitted)
    return {**{labels: 0 for labels in seen}, **samples}


async def run(engine: Engine, unsubmitted: Callable[[], Iterable[str]], *,
              interval: float) -> None:
    """Refresh :data:`WAITING` every ``interval`` seconds until cancelled; a failed read
    is logged and tried again next time."""
    seen: set[tuple[str, str]] = set()
    while True:
        try:
            samples = waiting_samples(await engine.waiting_counts(), unsubmitted(), seen)
            for (reason, pool), value in samples.items():
                WAITING.labels(reason, pool).set(value)
            seen = set(samples)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("counting waiting executions failed (%s: %s)", type(exc).__name__, exc)
        await asyncio.sleep(interval)
