"""Prometheus metrics of the engine (names follow ``conveyor_<noun>_<unit>``, labels bounded).

Label values are task types, outcomes and cache layers: small fixed sets, never ids.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

TASK_ATTEMPTS = Counter(
    "conveyor_task_attempts_total",
    "Task attempts finished by this worker, by task type and outcome.",
    ["type", "outcome"],
)
TASK_DURATION = Histogram(
    "conveyor_task_duration_seconds",
    "Wall time of one task attempt on a worker, by task type.",
    ["type"],
    buckets=(0.001, 0.005, 0.02, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
COMMIT_BATCH = Histogram(
    "conveyor_commit_batch_size",
    "Outcomes committed per PostgreSQL transaction.",
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000),
)
CACHE_REQUESTS = Counter(
    "conveyor_cache_requests_total",
    "Cache look-ups by cache (workflow, execution, outputs) and where they were answered "
    "(memory, redis, miss = PostgreSQL).",
    ["cache", "result"],
)
DEAD_LETTERS = Counter(
    "conveyor_dead_letters_total", "Task attempts given up after too many deliveries."
)
REDIS_EVICTION_POLICY_OK = Gauge(
    "conveyor_redis_eviction_policy_ok",
    "Whether Redis's maxmemory-policy keeps Conveyor's keys (1: noeviction), may evict them "
    "(0) or could not be read (-1: CONFIG GET renamed or forbidden), by policy.",
    ["policy"],
)
DEPENDENCY_UP = Gauge(
    "conveyor_dependency_up",
    "1 while a dependency of this worker answers, 0 during an outage (dependency: redis, "
    "postgres); see conveyor_engine.dependencies.",
    ["dependency"],
)
OUTCOMES_REFUSED = Counter(
    "conveyor_outcomes_refused_total",
    "Attempt outcomes refused at commit because their claim had been taken over (fencing).",
)
TASKS_WAITING = Gauge(
    "conveyor_tasks_waiting",
    "Tasks of a pool waiting on a durable timer, by reason: LockHeld, RateLimited, "
    "RetryBackoff, Timer (a wait task). Set by the pool's dispatcher.",
    ["pool", "reason"],
)
LOCK_LOST = Counter(
    "conveyor_lock_lost_total",
    "Attempt outcomes refused at commit because a lock of theirs was taken by a newer holder "
    "after its lease ran out (lock fencing); the attempt is recorded Lost, reason LockLost.",
)
LOST_ATTEMPTS = Counter(
    "conveyor_lost_attempts_total",
    "Attempts recorded as lost after their worker stopped renewing the claim's lease.",
)
