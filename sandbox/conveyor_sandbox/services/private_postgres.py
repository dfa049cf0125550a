"""A private PostgreSQL that a fault test may stop, start and restart (``pg_ctl``).

Unlike :func:`.local_postgres.local_postgres_server`, this one also runs when the caller is
root (as CI is): ``initdb`` refuses root, so the server's commands then run as the system's
``postgres`` user (``runuser -u postgres``), with its data directory owned by that user.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .base import START_TIMEOUT_SECONDS, ServerStartError, find_free_port, scratch_dir, tail
from .local_postgres import _find_postgres_bindir


@dataclass
class PrivatePostgres:
    """A private server: ``url`` of its ``postgres`` database, data directory and log."""

    port: int
    data: Path
    log: Path
    bindir: Path
    as_user: list[str]

    @property
    def url(self) -> str:
        """``postgresql://postgres@127.0.0.1:<port>/postgres``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        options = (f"-p {self.port} -k '{self.data.parent}' -c listen_addresses=127.0.0.1 "
                   "-c fsync=off")
        done = subprocess.run(
            [*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
             str(self.log), "-o", options, "-w", "-t", str(int(START_TIMEOUT_SECONDS)), *args],
            stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if done.returncode != 0:
            raise ServerStartError(
                f"pg_ctl {' '.join(args)} exited {done.returncode}: "
                f"{done.stderr.decode(errors='replace').strip()}; end of {self.log}:\n"
                f"{tail(self.log)}")

    def start(self) -> None:
        """``pg_ctl start`` and wait until it accepts connections."""
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop -m <mode>``: ``fast`` ends every session (what a failover or a
        restart does to clients), ``immediate`` is a crash."""
        self._pg_ctl("-m", mode, "stop")

    def _processes(self) -> list[int]:
        """The postmaster's pid (from ``postmaster.pid``) and its children's, children first."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                children.append(int(stat.parent.name))
        return [*children, postmaster]

    def pause(self) -> None:
        """``SIGSTOP`` the server and every backend: connections stay open, nothing answers
        (a black hole, as a network partition looks to a client). Linux only (``/proc``)."""
        for pid in self._processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        """``SIGCONT`` after :meth:`pause` (the postmaster first)."""
        for pid in reversed(self._processes()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def restart(self) -> None:
        """``pg_ctl restart -m fast``: every connection is dropped, then the server is back."""
        self._pg_ctl("-m", "fast", "restart")


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """``initdb`` a private PostgreSQL on a free loopback port, start it, yield it, stop it.

    Raises :class:`ServerStartError` when ``initdb``/``pg_ctl`` are missing, when running
    as root without a ``postgres`` user or ``runuser``, or when the server does not start.
    """
    bindir = _find_postgres_bindir()
    if bindir is None:
        raise ServerStartError("initdb/pg_ctl not found; install the PostgreSQL server "
                               "(Debian: apt-get install postgresql)")
    as_user: list[str] = []
    owner = None
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            owner = None
        if runuser is None or owner is None:
            raise ServerStartError("as root a private PostgreSQL runs as the 'postgres' user "
                                   "through runuser; neither may be missing")
        as_user = [runuser, "-u", "postgres", "--"]
    with scratch_dir("conveyor-pgha-") as tmp:
        if owner is not None:
            os.chown(tmp, owner.pw_uid, owner.pw_gid)
        data, log = tmp / "data", tmp / "postgres.log"
        log.touch()
        if owner is not None:
            os.chown(log, owner.pw_uid, owner.pw_gid)
        init = subprocess.run(
            [*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "-A",
             "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
            stdin=subprocess.DEVNULL, capture_output=True, check=False)
        if init.returncode != 0:
            raise ServerStartError(f"initdb failed ({init.returncode}): "
                                   f"{init.stderr.decode(errors='replace')[-1500:]}")
        server = PrivatePostgres(find_free_port(), data, log, bindir, as_user)
        server.start()
        try:
            yield server
        finally:
            with contextlib.suppress(ServerStartError):
                server.stop("immediate")
