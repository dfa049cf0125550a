"""``conveyor dev`` works from an installed wheel, not only from a checkout.

In a fresh virtual environment outside the checkout, ``pip install '<checkout>[sandbox]'`` (a
real, non-editable install: pip builds the wheel with hatchling), then, from yet another
directory, ``conveyor dev --apply <checkout>/examples/ --wait`` must exit 0 with every
Execution Succeeded. It catches what the editable install hides: files the wheel leaves out
(CRDs, SQL migrations, the API server's resource catalogue), paths computed relative to the
checkout, and dependencies only the test extra happens to bring.

pip uses this machine's configuration (index, find-links, cache); the install takes tens of
seconds with a warm cache, minutes with a cold one, hence the ``slow`` mark and the timeout.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from conveyor_sandbox import services

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ("data-pipeline-example", "fan-out-fan-in-example", "retry-recovers-example",
            "own-task-types-example", "publish-slideshow-example")


async def run(args: list[str], *, cwd: Path, venv: Path, timeout: float,
              extra_env: dict[str, str] | None = None) -> str:
    """Run ``args`` in ``cwd`` with ``venv`` active; its output, asserting exit 0.

    The environment is built here rather than passed in, so a failure's traceback (which
    shows the arguments) never prints this machine's whole environment.
    """
    proc = await asyncio.create_subprocess_exec(
        *args, cwd=cwd, env={**clean_env(venv), **(extra_env or {})},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    text = out.decode(errors="replace")
    assert proc.returncode == 0, f"{args[:3]} exited {proc.returncode}:\n{text[-6000:]}"
    return text


def clean_env(venv: Path) -> dict[str, str]:
    """This process's environment minus anything that would let the checkout leak in."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["VIRTUAL_ENV"] = str(venv)
    return env


@pytest.mark.timeout(1200)
async def test_conveyor_dev_runs_the_examples_from_an_installed_wheel(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, postgres_server_url: str
) -> None:
    home = tmp_path_factory.mktemp("installed")
    assert ROOT not in home.parents, "the virtual environment must be outside the checkout"
    venv, elsewhere = home / "venv", home / "elsewhere"
    elsewhere.mkdir()
    await run([sys.executable, "-m", "venv", str(venv)], cwd=home, venv=venv, timeout=120)
    python = venv / "bin" / "python"
    await run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
               f"{ROOT}[sandbox]"], cwd=home, venv=venv, timeout=900)
    # examples/own-task-types.yaml runs the example task package's types: a team's own
    # package is installed beside Conveyor the same way (docs/task-types.md).
    await run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q",
               "--no-deps", f"{ROOT}/examples/tasktypes"], cwd=home, venv=venv, timeout=300)

    # The packages come from the environment's site-packages, not from the checkout.
    where = await run([str(python), "-c",
                       "import conveyor_engine, conveyor_operator, conveyor_sandbox\n"
                       "for m in (conveyor_engine, conveyor_operator, conveyor_sandbox):\n"
                       "    print(m.__file__)"], cwd=elsewhere, venv=venv, timeout=60)
    for line in where.split():
        assert Path(line).is_relative_to(venv), where

    async with services.fresh_database(postgres_server_url, "conveyor_wheel") as database:
        out = await run(
            [str(venv / "bin" / "conveyor"), "dev", "--apply", f"{ROOT}/examples/", "--wait",
             "--workdir", str(elsewhere / ".conveyor")],
            cwd=elsewhere, venv=venv, timeout=300,
            extra_env={"CONVEYOR_REDIS_URL": redis_url, "CONVEYOR_DATABASE_URL": database})
    for name in EXAMPLES:
        assert name in out, out
    assert out.count("Succeeded") >= len(EXAMPLES) and "all Executions Succeeded" in out, out
