"""``conveyor-operator``: run the kopf operator with validated ``CONVEYOR_*`` settings."""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated

import typer

from conveyor_engine.settings import SettingsError, load_settings

from .crdcheck import apply_crds, check_installed_crds
from .kube import Kube
from .operate import operate
from .release import release_finalizers, stop_operator
from .settings import OperatorSettings

app = typer.Typer(add_completion=False,
                  help="Conveyor operator. Settings come from CONVEYOR_* variables.")


@app.callback()
def _root() -> None:
    """Conveyor operator. Settings come from CONVEYOR_* variables."""


crds_app = typer.Typer(add_completion=False, help="The CustomResourceDefinitions.")
app.add_typer(crds_app, name="crds")


def _settings() -> OperatorSettings:
    try:
        config = load_settings(OperatorSettings)
    except SettingsError as exc:  # a bad CONVEYOR_* value: say which, exit 2 (as the engine)
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    if config.kubeconfig:
        os.environ["KUBECONFIG"] = config.kubeconfig
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return config  # type: ignore[return-value]


async def _with_api(config: OperatorSettings, work):
    kube = await Kube.connect(config.kubeconfig or os.environ.get("KUBECONFIG"))
    try:
        return await work(kube.api)
    finally:
        await kube.close()


@app.command()
def run(verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False) -> None:
    """Reconcile Workflows, Executions and WorkerPools until SIGTERM or SIGINT.

    Stops at once (exit 3) when the installed CRDs are not the ones this operator needs.
    """
    config = _settings()
    if verbose:
        logging.getLogger().setLevel(logging.DEBUG)
    problems = asyncio.run(_with_api(config, check_installed_crds))
    if problems:
        for problem in problems:
            typer.echo(f"conveyor-operator: {problem}", err=True)
        raise typer.Exit(3)
    from . import handlers  # noqa: F401  (registers the handlers with kopf)
    from .pools import handlers as pool_handlers  # noqa: F401
    from .schedules import handlers as schedule_handlers  # noqa: F401

    asyncio.run(operate(config))


@crds_app.command("apply")
def crds_apply() -> None:
    """Create or replace the CRDs this operator ships (the chart's upgrade hook runs it)."""
    config = _settings()
    for line in asyncio.run(_with_api(config, apply_crds)):
        typer.echo(line)


@crds_app.command("check")
def crds_check() -> None:
    """Exit 0 when the installed CRDs match this operator, else print why and exit 3."""
    config = _settings()
    problems = asyncio.run(_with_api(config, check_installed_crds))
    for problem in problems:
        typer.echo(problem, err=True)
    raise typer.Exit(3 if problems else 0)


@app.command("release-finalizers")
def release_finalizers_command(
    operator_deployment: Annotated[str | None, typer.Option(
        help="Scale this operator Deployment (in $POD_NAMESPACE) to zero first.")] = None,
) -> None:
    """Before an uninstall: stop the operator, then remove Conveyor's finalizers."""
    config = _settings()

    async def work(api):
        if operator_deployment:
            namespace = os.environ.get("POD_NAMESPACE") or config.namespace or "default"
            await stop_operator(api, namespace, operator_deployment, say=typer.echo)
        return await release_finalizers(api, config.namespace, say=typer.echo)

    changed = asyncio.run(_with_api(config, work))
    typer.echo(f"released finalizers of {changed} object(s)")


def main() -> None:
    """Console-script entry point."""
    app()
