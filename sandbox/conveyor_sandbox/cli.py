"""The ``conveyor`` console script: :mod:`.dev` (``conveyor dev``), or a hint when the
``sandbox`` extra is not installed.

The script comes with every install of the ``conveyor`` distribution, but the sandbox's
dependencies (the operator's kopf, aiohttp, httpbin...) come only with the ``sandbox`` extra,
so without it the command says what to install instead of failing with a traceback.
"""

from __future__ import annotations

import sys

#: Printed (with the missing module's name) when a dependency of the sandbox is missing.
HINT = ("conveyor: {name} is not installed; `conveyor dev` needs the sandbox extra: "
        "pip install 'conveyor[sandbox]' (in a checkout: pip install -e '.[sandbox]')")


def main() -> None:
    """Console-script entry point; exits 2 with :data:`HINT` when a dependency is missing.

    Only a missing third-party module gets the hint: a missing Conveyor module is a broken
    install or a bug, and its traceback is the better report.
    """
    try:
        from .dev import app
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0].startswith("conveyor"):
            raise
        print(HINT.format(name=exc.name.split(".")[0]), file=sys.stderr)
        sys.exit(2)
    app()
