"""Workflows compiled against what their pools serve (issue 11 item 2): the pool facts the
compiler is given, the Workflows that wait for a pool's task types, and compiling them
again when a pool's catalogue or spec changes.

The facts of a pool come from three places: its catalogue (the task types its workers
advertise, read from the engine), whether it is settled (its Deployment's rollout and the
number of advertising workers: :mod:`.pools.catalogue`) and the Secrets its spec mounts. A
pool the operator does not know (no WorkerPool) gets no facts: its tasks are checked
against the operator's own registry, as before, and Executions wait with ``PoolNotFound``.

A Workflow whose compile ended not Ready (waiting for a type, or invalid, perhaps for a
pool's reason such as an unmounted Secret) is remembered with the pools it uses; a change of
one of them compiles it again (:class:`Recompiler`), writing its status only when that
changes. Pools such a Workflow waits on keep one worker (:meth:`TypeWaits.awaited`), so a
pool at zero that never advertised cannot leave it waiting forever.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from conveyor_engine.api import Engine, PoolFacts

from .pools.catalogue import settled
from .pools.scaler import PoolScaler

log = logging.getLogger(__name__)

#: A Workflow by ``(namespace, name)``.
Key = tuple[str, str]
#: The default pool of a workflow without ``spec.pool`` (:class:`conveyor_engine.model.
#: WorkflowSpec`'s default).
DEFAULT_POOL = "default"


def pools_used(spec: Mapping[str, Any]) -> set[str]:
    """The pools a raw Workflow ``spec`` runs tasks on: its ``pool`` (default
    :data:`DEFAULT_POOL`) and every task's own ``pool``. Lenient: a malformed spec is the
    compiler's to report."""
    default = spec.get("pool") if isinstance(spec.get("pool"), str) else DEFAULT_POOL
    pools = {default or DEFAULT_POOL}
    tasks = spec.get("tasks")
    for task in tasks if isinstance(tasks, list) else []:
        if isinstance(task, Mapping) and isinstance(task.get("pool"), str) and task["pool"]:
            pools.add(task["pool"])
    return pools


async def pool_facts(engine: Engine, scaler: PoolScaler,
                     pools: Iterable[str]) -> dict[str, PoolFacts]:
    """The compiler's facts for each of ``pools`` the operator knows: the pool's catalogue
    read now, settledness from its Deployment as last read, its mounted Secrets. Raises
    redis-py's errors when Redis cannot be reached (the caller retries)."""
    known = sorted(p for p in pools if p in scaler.pools)
    catalogues = await engine.pool_catalogues(known) if known else {}
    facts = {}
    for pool in known:
        state = scaler.pools[pool]
        catalogue = catalogues[pool]
        blocked = state.problem is not None and state.problem.blocks_work
        facts[pool] = catalogue.facts(
            settled=not blocked and settled(state.rollout, catalogue.workers),
            secrets=[secret.name for secret in state.spec.secrets])
    return facts


class TypeWaits:
    """Workflows whose last compile was not Ready, with the pools they use and the pools
    they wait on for a task type."""

    def __init__(self) -> None:
        self._workflows: dict[Key, tuple[frozenset[str], frozenset[str]]] = {}

    def note(self, key: Key, used: Iterable[str], awaited: Iterable[str] = ()) -> None:
        """Remember ``key`` as not Ready, using ``used`` and waiting on ``awaited``."""
        self._workflows[key] = (frozenset(used), frozenset(awaited))

    def forget(self, key: Key) -> None:
        """``key`` compiled Ready, or is gone."""
        self._workflows.pop(key, None)

    def using(self, pool: str) -> list[Key]:
        """Workflows not Ready that use ``pool``, sorted."""
        return sorted(key for key, (used, _) in self._workflows.items() if pool in used)

    def awaited(self, pool: str) -> bool:
        """Whether a Workflow waits for ``pool`` to advertise a task type."""
        return any(pool in awaited for _, awaited in self._workflows.values())


class Recompiler:
    """Compiles Workflows again, one at a time, when a pool they use changes.
    ``compile_again(key)`` does one (reads the object, compiles, writes status if changed).
    """

    def __init__(self, waits: TypeWaits,
                 compile_again: Callable[[Key], Awaitable[None]]) -> None:
        self._waits = waits
        self._compile_again = compile_again
        self._pending: set[Key] = set()
        self._wake = asyncio.Event()

    def pool_changed(self, pool: str) -> None:
        """A pool's catalogue, settledness or spec changed: its not-Ready Workflows look
        again (safe to call from any callback on the loop)."""
        found = self._waits.using(pool)
        if found:
            self._pending.update(found)
            self._wake.set()

    def compile(self, keys: Iterable[Key]) -> None:
        """Compile ``keys`` again (the Workflows that call one that changed: issue 12)."""
        keys = list(keys)
        if keys:
            self._pending.update(keys)
            self._wake.set()

    async def run(self) -> None:
        """Compile pending Workflows until cancelled."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                key = min(self._pending)
                self._pending.discard(key)
                try:
                    await self._compile_again(key)
                except asyncio.CancelledError:
                    raise
                except Exception:  # the next change tries again; never stop the loop
                    log.exception("workflow %s/%s: compiling it again failed", *key)
