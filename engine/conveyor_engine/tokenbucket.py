"""Rate-limit tokens in Redis: one Lua script, timed by the Redis server's own clock.

The script is :func:`conveyor_engine.ratelimits.gcra`, line for line, on one key per limit
(:meth:`~conveyor_engine.keys.Keys.rate_limit`). It reads the time with ``TIME`` (seconds
and microseconds of the server's clock), so every worker's request is judged against one
clock and no clock agreement between workers is needed; Redis runs a script atomically
(no other command runs in between), so two workers can never take the same token. ``TIME``
in a script is allowed because Redis 7 replicates a script's effects, not the script (the
``SET`` carries the computed value). The key expires once the bucket would be full again,
so an unused limit costs no memory.
"""

from __future__ import annotations

from redis.asyncio import Redis

from .keys import Keys
from .ratelimits import Decision, Rate

# KEYS[1]: the limit's key. ARGV: interval_us, burst, units. Returns {allowed, wait_us}.
_GCRA = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local units = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
local start = math.max(tat, now)
local new = start + units * interval
local allow_at = new - burst * interval
if allow_at <= now then
  redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX',
             math.floor((new - now) / 1000) + 1000)
  return {1, 0}
end
return {0, allow_at - now}
"""


class TokenBucket:
    """Takes rate-limit tokens for every worker of an installation (one Redis)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self._keys = keys
        self._script = redis.register_script(_GCRA)

    async def take(self, key: str, rate: Rate, units: int) -> Decision:
        """Take ``units`` tokens of limit ``key`` at ``rate``, now by Redis's clock.

        Returns the :class:`~conveyor_engine.ratelimits.Decision` (``tat`` is not read
        back: 0). ``units`` must be at most ``rate.burst`` (the caller checks; the script
        would refuse forever). Raises redis-py's errors when Redis fails.
        """
        allowed, wait = await self._script(keys=[self._keys.rate_limit(key)],
                                           args=[rate.interval_us, rate.burst, units])
        return Decision(bool(allowed), 0, int(wait))
