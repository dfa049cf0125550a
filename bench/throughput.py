"""Throughput benchmark: N no-op (`set`) tasks through K real worker processes.

Uses real Redis and PostgreSQL (``CONVEYOR_TEST_REDIS_URL`` / ``CONVEYOR_TEST_DATABASE_URL``,
else the local ones, else private servers, as the tests do), a fresh database and key
prefix, and prints:

* tasks/s from the first submit until the last execution is final;
* PostgreSQL transactions per task (``pg_stat_database.xact_commit`` of the bench database);
* Redis commands per task (``INFO commandstats``) and Redis round trips per task
  (``INFO stats`` ``total_reads_processed``: one read event per request or pipeline that
  reached the server, so a pipelined batch counts once); both server-wide: run it on a
  quiet server.

    .venv/bin/python bench/throughput.py --tasks 20000 --workers 2 --concurrency 256
    .venv/bin/python bench/throughput.py --tasks 5000 --locked   # each task: lock + token

The target on a 2-core machine is 5,000 durable tasks/s. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from pathlib import Path

import asyncpg
import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.workers import WorkerProcess, worker_env

from conveyor_engine.api import Engine
from conveyor_sandbox import services


async def redis_counters(url: str) -> tuple[int, int]:
    """(commands, read events) the Redis server has processed so far.

    Commands are the sum of ``cmdstat_*:calls``; read events are ``total_reads_processed``
    (Redis >= 6), the number of times the server read a client's socket: a round trip.
    """
    client = aioredis.Redis.from_url(url)
    try:
        commands = await client.info("commandstats")
        stats = await client.info("stats")
    finally:
        await client.aclose()
    return sum(int(v["calls"]) for v in commands.values()), int(stats["total_reads_processed"])


async def pg_commits(dsn: str) -> int:
    """Committed transactions of the current database (``pg_stat_database``)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_stat_force_next_flush()")
        return await conn.fetchval(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()")
    finally:
        await conn.close()


async def run(args: argparse.Namespace, redis_url: str, database_url: str) -> None:
    prefix = f"bench-{secrets.token_hex(3)}"
    pool = "bench"
    engine = await Engine.connect(redis_url=redis_url, database_url=database_url,
                                  key_prefix=prefix)
    per = args.tasks_per_execution
    executions = max(1, args.tasks // per)
    total = executions * per
    tasks = [{"name": f"t{i}", "type": "set", "params": {"i": i}} for i in range(per)]
    spec: dict = {"pool": pool, "tasks": tasks}
    if args.locked:
        # Each task takes one of 8 semaphores (limit 64) and a token of a limit too high
        # to bind: what is measured is the cost of the gate, not waiting.
        for i, task in enumerate(tasks):
            task["locks"] = [{"name": f"bench-{i % 8}", "limit": 64}]
            task["rateLimit"] = {"key": "bench-api"}
        spec["rateLimits"] = [{"key": "bench-api", "perSecond": 1_000_000, "burst": 100_000}]
    workflow = await engine.register("locked" if args.locked else "noop", spec)
    env = worker_env(redis_url=redis_url, database_url=database_url, key_prefix=prefix,
                     pool=pool, concurrency=str(args.concurrency),
                     batch_size=str(args.batch_size))
    workers = [WorkerProcess(env, f"bench{i}") for i in range(args.workers)]
    try:
        for worker in workers:
            worker.wait_serving()
        redis_before = await redis_counters(redis_url)
        pg_before = await pg_commits(database_url)
        start = time.perf_counter()
        # Submit as an operator would: several at once.
        gate = asyncio.Semaphore(8)

        async def submit() -> None:
            async with gate:
                await engine.submit(workflow)

        await asyncio.gather(*(submit() for _ in range(executions)))
        submitted = time.perf_counter()
        while True:
            open_ = await engine.store._pool.fetchval(
                "SELECT count(*) FROM executions WHERE phase IN ('Pending', 'Running')")
            if open_ == 0:
                break
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - start
        redis_after = await redis_counters(redis_url)
        redis_used, redis_reads = (a - b for a, b in zip(redis_after, redis_before, strict=True))
        pg_used = await pg_commits(database_url) - pg_before
        failed = await engine.store._pool.fetchval(
            "SELECT count(*) FROM executions WHERE phase <> 'Succeeded'")
        attempts = await engine.store._pool.fetchval("SELECT count(*) FROM attempts")
    finally:
        for worker in workers:
            worker.terminate()
        await engine.close()
        services.delete_prefixed_keys(redis_url, prefix)
    kind = "each with a lock and a rate-limit token" if args.locked else "plain set tasks"
    print(f"tasks:                      {total} ({executions} executions x {per} tasks, "
          f"{kind})")
    print(f"workers x concurrency:      {args.workers} x {args.concurrency}")
    print(f"submit time:                {submitted - start:.2f} s")
    print(f"total time:                 {elapsed:.2f} s")
    print(f"throughput:                 {total / elapsed:,.0f} tasks/s")
    print(f"PostgreSQL transactions:    {pg_used / total:.3f} per task ({pg_used} in all)")
    print(f"Redis commands:             {redis_used / total:.3f} per task ({redis_used} in all)")
    print(f"Redis round trips:          {redis_reads / total:.3f} per task ({redis_reads} in all)")
    print(f"attempts recorded:          {attempts} (expected {total}); "
          f"executions not Succeeded: {failed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--tasks-per-execution", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--locked", action="store_true",
                        help="every task takes a lock (8 semaphores of 64) and a "
                             "rate-limit token (a limit too high to bind)")
    args = parser.parse_args()
    with services.redis_server(os.environ.get("CONVEYOR_TEST_REDIS_URL")) as redis_url, \
            services.postgres_server(os.environ.get("CONVEYOR_TEST_DATABASE_URL")) as pg, \
            services.fresh_database_sync(pg, "conveyor_bench") as database_url:
        asyncio.run(run(args, redis_url, database_url))


if __name__ == "__main__":
    main()
