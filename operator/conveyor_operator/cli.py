"""``conveyor-operator``: run the kopf operator with validated ``CONVEYOR_*`` settings."""

from __future__ import annotations

import asyncio
import logging
import os

import kopf
import typer

from conveyor_engine.cli import load_settings

from .settings import OperatorSettings

app = typer.Typer(add_completion=False,
                  help="Conveyor operator. Settings come from CONVEYOR_* variables.")


@app.callback()
def _root() -> None:
    """Conveyor operator. Settings come from CONVEYOR_* variables."""


@app.command()
def run(verbose: bool = typer.Option(False, "--verbose", "-v")) -> None:
    """Reconcile Workflows and Executions until SIGTERM or SIGINT."""
    config = load_settings(OperatorSettings)
    if config.kubeconfig:
        os.environ["KUBECONFIG"] = config.kubeconfig
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from . import handlers  # noqa: F401  (registers the handlers with kopf)
    from .pools import handlers as pool_handlers  # noqa: F401

    asyncio.run(kopf.operator(
        clusterwide=config.namespace is None,
        namespaces=[config.namespace] if config.namespace else [],
        standalone=True,
        memo=kopf.Memo(config=config),
    ))


def main() -> None:
    """Console-script entry point."""
    app()
