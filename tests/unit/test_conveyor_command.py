"""The ``conveyor`` script without the ``sandbox`` extra says what to install, instead of a
traceback; a missing Conveyor module is a bug and keeps its traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Run in a fresh interpreter: hiding a module (None in sys.modules) must not leak into the
# test session, and the command's modules must not be imported already.
_RUN = """\
import sys
sys.modules[sys.argv[1]] = None
sys.argv = ["conveyor", "dev", "--help"]
from conveyor_sandbox.cli import main
main()
"""


@pytest.mark.parametrize(
    ("hidden", "code", "says"),
    [
        ("aiohttp", 2, "conveyor: aiohttp is not installed; `conveyor dev` needs the sandbox "
                       "extra: pip install 'conveyor[sandbox]'"),
        ("kubernetes_asyncio", 2, "conveyor: kubernetes_asyncio is not installed"),
        ("conveyor_sandbox.sandbox", 1, "ModuleNotFoundError: import of "
                                        "conveyor_sandbox.sandbox halted"),
        ("nothing_hidden", 0, "Usage: conveyor dev"),
    ],
)
def test_a_missing_dependency_names_the_sandbox_extra(hidden: str, code: int, says: str) -> None:
    done = subprocess.run([sys.executable, "-c", _RUN, hidden], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == code, done.stderr
    assert says in done.stdout + done.stderr
