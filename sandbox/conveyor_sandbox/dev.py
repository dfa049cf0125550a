"""``conveyor dev``, the command newcomers run first; :mod:`.cli` is its entry point."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from conveyor_engine.phases import ExecutionPhase

from .apply import ApplyError
from .processes import ProcessFailed
from .sandbox import Sandbox, SandboxConfig

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Conveyor: Kubernetes-native workflows.")
console = Console()
if not console.is_terminal:
    console.width = 160  # logs and CI: no terminal to fit, so do not fold the table


@app.callback()
def _root() -> None:
    """Conveyor: Kubernetes-native workflows."""


@app.command()
def dev(
    apply: Annotated[list[Path] | None, typer.Option(
        "--apply", "-f", help="Manifest file or directory to apply (repeatable).")] = None,
    wait: Annotated[bool, typer.Option(
        help="Wait for the applied Executions, print them, exit 0 only if all Succeeded.",
    )] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 300.0,
    workdir: Annotated[Path, typer.Option(
        help="Kubeconfig and logs go here. One sandbox per directory: to run a second "
             "sandbox at the same time, give it another one.")] = Path(".conveyor"),
    workers: Annotated[int, typer.Option(min=1, max=16, help="Engine worker processes.")] = 1,
    redis_url: Annotated[str | None, typer.Option(
        envvar="CONVEYOR_REDIS_URL", help="Redis to use (default: local, or a private one).",
    )] = None,
    database_url: Annotated[str | None, typer.Option(
        envvar="CONVEYOR_DATABASE_URL",
        help="PostgreSQL database to use (default: a fresh one on the local server).",
    )] = None,
) -> None:
    """Run the sandbox: an emulated Kubernetes API, the operator, a worker, Redis,
    PostgreSQL and an httpbin for the examples, all on this machine."""
    config = SandboxConfig(workdir=workdir, redis_url=redis_url, database_url=database_url,
                           workers=workers)
    try:
        code = asyncio.run(_dev(config, apply or [], wait, timeout))
    except (ApplyError, ProcessFailed, TimeoutError, RuntimeError) as exc:
        console.print(f"[red]conveyor dev: {escape(str(exc))}[/red]", soft_wrap=True)
        raise typer.Exit(1) from None
    raise typer.Exit(code)


async def _dev(config: SandboxConfig, paths: list[Path], wait: bool, timeout: float) -> int:
    console.print("[bold]Starting the Conveyor sandbox[/bold] (Redis, PostgreSQL, httpbin, "
                  "API emulation, operator, worker)...")
    async with Sandbox(config, report=_report) as sandbox:
        console.print(f"API server: {sandbox.api.url}")
        console.print(f"kubeconfig: {sandbox.kubeconfig.resolve()}")
        console.print(f"logs:       {config.workdir.resolve()}/")
        if sandbox.operator is not None:
            console.print(f"operator:   pid {sandbox.operator.proc.pid} (restarted if it exits)")
        console.print(f"PostgreSQL: {sandbox.database_url} (history: executions, tasks, "
                      f"attempts; dropped at exit unless you gave --database-url)")
        console.print(f"  kubectl --kubeconfig {sandbox.kubeconfig} apply -f examples/\n"
                      f"  kubectl --kubeconfig {sandbox.kubeconfig} get conveyor")
        applied = await sandbox.apply(paths) if paths else []
        for item in applied:
            where = f"{item.namespace}/" if item.namespace else ""
            console.print(f"{item.kind.lower()}/{where}{item.name} {item.action}")
        if wait:
            names = [(a.namespace or "default", a.name) for a in applied if a.kind == "Execution"]
            if not names:
                console.print("nothing to wait for: no Executions were applied")
                return 0
            try:
                finished = await sandbox.wait_finished(names, timeout)
            except TimeoutError:
                current = [await sandbox.get("executions", n, ns) or {} for ns, n in names]
                console.print(_table([c for c in current if c]))
                console.print(f"[red]timed out after {timeout:.0f}s; the table shows where "
                              f"each Execution stands (see MESSAGE)[/red]")
                return 1
            console.print(_table(finished))
            ok = all(f["status"]["phase"] == ExecutionPhase.SUCCEEDED for f in finished)
            console.print("[green]all Executions Succeeded[/green]" if ok
                          else "[red]some Executions did not succeed[/red]")
            return 0 if ok else 1
        console.print("Sandbox running; press Ctrl-C to stop.")
        await _until_signal_or(sandbox.failed)
        if sandbox.failure is not None:
            raise sandbox.failure
    return 0


def _report(message: str) -> None:
    """What the sandbox's watchdog says (the operator exited, was restarted, ...)."""
    console.print(f"[yellow]sandbox: {escape(message)}[/yellow]", soft_wrap=True)


async def _until_signal_or(failed: asyncio.Event) -> None:
    """Return on SIGINT/SIGTERM, or when ``failed`` is set (the sandbox gave up)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiters = [asyncio.create_task(stop.wait()), asyncio.create_task(failed.wait())]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _table(executions: list[dict]) -> Table:
    table = Table(title="Executions")
    for column in ("NAMESPACE", "NAME", "WORKFLOW", "PHASE", "PROGRESS", "DURATION", "MESSAGE"):
        table.add_column(column)
    for item in executions:
        status = item.get("status", {})
        phase = status.get("phase") or ExecutionPhase.PENDING
        succeeded = phase == ExecutionPhase.SUCCEEDED
        style = "green" if succeeded else "red"
        table.add_row(item["metadata"]["namespace"], item["metadata"]["name"],
                      item["spec"]["workflowRef"]["name"], f"[{style}]{phase}[/{style}]",
                      status.get("progress", ""), status.get("duration", ""),
                      "" if succeeded else (status.get("message") or "")[:100])
    return table
