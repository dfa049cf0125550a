"""Redis's ``maxmemory-policy``: whether the server may evict Conveyor's keys (issue 9).

Conveyor keeps its dispatch streams and consumer groups in Redis without a TTL, and its
caches and the dispatcher lock with one. Redis evicts keys only once ``maxmemory`` is
reached, and then by policy (https://redis.io/docs/latest/develop/reference/eviction/):

- ``noeviction``: nothing is evicted; writes fail with ``OOM`` instead. The only policy
  under which dispatch behaves as documented, so the only one accepted.
- ``volatile-lru``, ``volatile-lfu``, ``volatile-random``, ``volatile-ttl``: keys with a
  TTL are evicted: cached execution headers, outputs and workflows (refilled from
  PostgreSQL) and the dispatcher lock (a second worker may then run the dispatcher).
  Recoverable, but noisy: warned.
- ``allkeys-lru``, ``allkeys-lfu``, ``allkeys-random``: any key: dispatch streams and
  consumer groups too. Work is recovered from PostgreSQL (``NOGROUP`` recreation, the
  dispatcher's re-dispatch), with errors on the way and delays of a grace period: warned.

Checked once at start by workers (``conveyor-engine``) and by :meth:`Engine.connect
<conveyor_engine.api.Engine.connect>` (the operator), with ``CONFIG GET`` (Redis docs:
``CONFIG GET``). Managed Redis services often rename or forbid ``CONFIG``; the check is
then skipped with a warning. The result is the gauge ``conveyor_redis_eviction_policy_ok``.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from .metrics import REDIS_EVICTION_POLICY_OK

log = logging.getLogger(__name__)

#: The policy label when ``CONFIG GET`` could not be used.
UNKNOWN = "unknown"

#: Policies under which no Conveyor key is ever evicted.
SAFE_POLICIES = frozenset({"noeviction"})

#: Policies reported once already by this process (the warning is logged once).
_reported: set[str] = set()


def eviction_risk(policy: str) -> str | None:
    """What ``policy`` may evict of Conveyor's keys, as a sentence; ``None`` when safe.

    Pure, tested as a table. ``policy`` is the value of ``maxmemory-policy`` (lower case,
    as Redis reports it); an unknown value is treated as evicting.
    """
    if policy in SAFE_POLICIES:
        return None
    if policy.startswith("volatile-"):
        return ("evicts keys that have a TTL: Conveyor's cached headers, outputs and "
                "workflows and its dispatcher lock")
    if policy.startswith("allkeys-"):
        return ("evicts any key, Conveyor's dispatch streams and consumer groups "
                "included")
    return "is not noeviction, so Redis may evict Conveyor's keys"


def gauge_value(policy: str) -> int:
    """The gauge's value: 1 safe, 0 evicting, -1 unknown (``CONFIG`` not usable)."""
    if policy == UNKNOWN:
        return -1
    return 0 if eviction_risk(policy) else 1


async def check_eviction_policy(redis: Redis, *, where: str = "Redis") -> str:
    """Read ``maxmemory-policy`` with ``CONFIG GET``, export it as the gauge, warn once.

    Returns the policy, or :data:`UNKNOWN` when ``CONFIG GET`` failed for any reason (a
    renamed or forbidden command, a connection error): that is logged, never raised,
    because the engine works without the check. ``where`` names the connection in the
    log (``the dispatch Redis``).
    """
    try:
        answer = await redis.config_get("maxmemory-policy")
        policy = str(answer.get("maxmemory-policy") or UNKNOWN).lower()
    except Exception as exc:  # renamed/forbidden CONFIG: ResponseError, NoPermissionError
        policy = UNKNOWN
        if UNKNOWN not in _reported:
            log.warning("could not check maxmemory-policy of %s (%s: %s): CONFIG GET is "
                        "renamed or not allowed. Conveyor needs maxmemory-policy "
                        "noeviction; check it with your provider", where,
                        type(exc).__name__, exc)
    REDIS_EVICTION_POLICY_OK.clear()
    REDIS_EVICTION_POLICY_OK.labels(policy).set(gauge_value(policy))
    risk = eviction_risk(policy) if policy != UNKNOWN else None
    if risk and policy not in _reported:
        log.warning("maxmemory-policy of %s is %r, which %s. Conveyor requires "
                    "noeviction on its dispatch Redis (docs/engine.md); when Redis fills "
                    "up, work is recovered from PostgreSQL only after errors and delays",
                    where, policy, risk)
    _reported.add(policy)
    return policy
