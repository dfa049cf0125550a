"""``conveyor-engine``: run a worker (the default), apply migrations, or apply retention.

Exit codes: 0 after a graceful stop, 2 for invalid settings (the message names the
``CONVEYOR_*`` variable) or a task type that fails to load (the message names its entry
point, module and error), 1 when a server cannot be reached at start.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import typer

from .connections import RedisUrlError, database_pool_options, database_ssl, redis_client
from .redis_policy import check_eviction_policy
from .settings import EngineSettings, SettingsError
from .settings import load_settings as _load_settings
from .store import Store

app = typer.Typer(add_completion=False, no_args_is_help=False,
                  help="Conveyor engine worker. Settings come from CONVEYOR_* variables.")


@app.callback(invoke_without_command=True)
def _default(ctx: typer.Context) -> None:
    if ctx.invoked_subcommand is None:
        work()


@app.command()
def work() -> None:
    """Run a worker for CONVEYOR_POOL until SIGTERM or SIGINT, then stop gracefully."""
    settings = load_settings()
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    load_task_types()
    asyncio.run(_work(settings))


def load_task_types() -> None:
    """Load every installed task type (entry points of ``conveyor.tasktypes``) before
    connecting anywhere; a broken one stops the worker with one log line naming the entry
    point, its module and the error (exit code 2: the installation, not a server, is at
    fault, so restarting cannot help)."""
    from . import tasktypes

    log = logging.getLogger("conveyor_engine.cli")
    try:
        registry = tasktypes.load()
    except tasktypes.TaskTypeLoadError as exc:
        log.error("cannot start: a task type failed to load: %s", exc)
        raise typer.Exit(2) from None
    providers = (registry.entry(name).provider for name in registry)
    log.info("task types: %s", ", ".join(
        f"{p.entry_point.split(' = ')[0]} ({p.distribution or 'code'} {p.version or ''})"
        .replace(" )", ")") for p in providers))


async def _work(settings) -> None:
    from .health import start_health_server
    from .redaction import install_log_filter
    from .worker.streams import install as install_streams
    from .worker.worker import Worker

    try:
        redis = redis_client(settings, max_connections=settings.concurrency + 16)
    except RedisUrlError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if settings.migrate_on_start:  # on a connection of its own: migrations have no timeout
        await _apply_migrations(settings)
    # Every statement of the worker's pool times out (a black-holed PostgreSQL is noticed).
    store = await Store.connect(settings.database_url, apply_migrations=False,
                                max_size=max(4, min(20, settings.concurrency // 8 + 4)),
                                ssl=database_ssl(settings), **database_pool_options(settings))
    try:
        await redis.ping()
        await check_eviction_policy(redis, where="the dispatch Redis")
        worker = Worker(settings, store, redis)
        # Every log line of the process from now on has the held secret values taken out,
        # and so has what task code prints or warns (stdout, stderr, warnings).
        install_log_filter(lambda: worker.secrets.redactor)
        install_streams(lambda: worker.secrets.redactor)
        if settings.metrics_port:
            start_health_server(settings.metrics_port, worker.is_ready)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, worker.stop)
        await worker.run()
    finally:
        await store.close()
        await redis.aclose()


async def _apply_migrations(settings: EngineSettings) -> list[int]:
    store = await Store.connect(settings.database_url, apply_migrations=False, max_size=1,
                                ssl=database_ssl(settings))
    try:
        return await store.migrate()
    finally:
        await store.close()


@app.command()
def migrate() -> None:
    """Apply pending PostgreSQL migrations to CONVEYOR_DATABASE_URL and exit."""
    settings = load_settings()
    applied = asyncio.run(_apply_migrations(settings))
    typer.echo(f"applied migrations: {applied or 'none (schema up to date)'}")


@app.command()
def retention(
    days: float | None = typer.Option(None, help="Override CONVEYOR_RETENTION_DAYS (> 0)."),
) -> None:
    """Delete, once and for every pool, the executions finished more than
    CONVEYOR_RETENTION_DAYS days ago (with their tasks and attempts), in batches of
    CONVEYOR_RETENTION_BATCH_SIZE; print how many. Exit code 2 when retention is off (0)."""
    settings = load_settings()
    chosen = settings.retention_days if days is None else days
    if chosen <= 0:
        typer.echo("CONVEYOR_RETENTION_DAYS (or --days): expected a number of days > 0; "
                   "retention is off", err=True)
        raise typer.Exit(2)
    report = asyncio.run(_retention(settings, chosen))
    typer.echo(f"retention: deleted {report.deleted} execution(s) in "
               f"{len(report.batches)} batch(es)")


async def _retention(settings: EngineSettings, days: float):
    from datetime import UTC, datetime

    from .retention import purge_expired, retention_cutoff

    store = await Store.connect(settings.database_url, apply_migrations=False, max_size=1,
                                ssl=database_ssl(settings), **database_pool_options(settings))
    try:
        cutoff = retention_cutoff(datetime.now(UTC), days)
        assert cutoff is not None
        return await purge_expired(store, cutoff=cutoff, batch=settings.retention_batch_size)
    finally:
        await store.close()


def load_settings(cls: type[EngineSettings] = EngineSettings) -> EngineSettings:
    """``cls`` from the environment; on a bad value print why and exit with code 2."""
    try:
        return _load_settings(cls)
    except SettingsError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None


def main() -> None:
    """Console-script entry point."""
    app()
