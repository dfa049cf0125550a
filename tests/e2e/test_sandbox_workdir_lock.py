"""One sandbox per work directory: the lock names its holder and dies with it.

(``conveyor dev`` refusing a second start is tested end to end in test_dev_command.py.)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor_sandbox.workdir import LOCK_NAME, WorkdirBusy, WorkdirLock

pytestmark = pytest.mark.e2e

# Takes the lock, starts a child of its own that outlives it (as the operator and workers
# would), says so, then holds the lock until its stdin closes.
HOLDER = """\
import subprocess, sys
from pathlib import Path
from conveyor_sandbox.workdir import WorkdirLock
WorkdirLock(Path(sys.argv[1])).acquire()
child = subprocess.Popen([sys.executable, "-c", "import signal; signal.pause()"],
                         stdin=subprocess.DEVNULL)
print(child.pid, flush=True)
sys.stdin.read()
"""


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """A process holding the lock of ``tmp_path``, and the pid of a child it started."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())  # blocks until the lock is held
    try:
        yield proc, child
    finally:
        proc.kill()
        proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_held_workdir_is_refused_naming_the_directory_the_pid_and_the_way_out(
    tmp_path: Path, holder: tuple[subprocess.Popen, int]
) -> None:
    proc, _ = holder
    with pytest.raises(WorkdirBusy) as refused:
        WorkdirLock(tmp_path).acquire()
    assert refused.value.pid == proc.pid
    assert str(refused.value) == (
        f"another sandbox (pid {proc.pid}) is already running in {tmp_path.resolve()}; stop "
        f"it first, or give this one its own directory with --workdir DIR")
    assert (tmp_path / LOCK_NAME).read_text() == f"{proc.pid}\n"  # left as it was


def test_the_lock_goes_with_its_holder_even_when_killed_and_children_outlive_it(
    tmp_path: Path, holder: tuple[subprocess.Popen, int]
) -> None:
    proc, child = holder
    proc.kill()
    proc.wait()
    assert Path(f"/proc/{child}").exists() or sys.platform != "linux"  # the child lives on
    with WorkdirLock(tmp_path) as lock:
        assert (tmp_path / LOCK_NAME).read_text().strip().isdigit()
        with pytest.raises(WorkdirBusy):  # a second open file in one process conflicts too
            WorkdirLock(tmp_path).acquire()
    assert lock.path.exists()  # never deleted, only unlocked
    WorkdirLock(tmp_path).acquire().release()


def test_a_missing_workdir_is_created(tmp_path: Path) -> None:
    with WorkdirLock(tmp_path / "a" / "b") as lock:
        assert lock.path.parent.is_dir()
