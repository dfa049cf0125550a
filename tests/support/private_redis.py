"""A private ``redis-server`` a fault test may kill, restart on the same port, or freeze.

Never the shared Redis on 6379: only servers started here are stopped or paused.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from conveyor_sandbox.services.base import find_free_port


class PrivateRedis:
    """One ``redis-server`` on a free loopback port, nothing kept on disk.

    :meth:`kill` (SIGKILL) then :meth:`start` brings it back empty on the same port: an
    outage of the dispatch Redis that loses its data, as a restarted pod without
    persistence does. :meth:`pause`/:meth:`resume` freeze it (SIGSTOP/SIGCONT): a server
    that accepts nothing and answers nothing.
    """

    def __init__(self) -> None:
        self.port = find_free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._dir = Path(tempfile.mkdtemp(prefix="conveyor-private-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until it answers PING."""
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not on PATH"
        with (self._dir / "redis.log").open("ab") as log:
            self._proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self._dir)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = redis.Redis.from_url(self.url, socket_timeout=1)
                try:
                    client.ping()
                    return
                finally:
                    client.close()
            except redis.RedisError:
                assert self._proc.poll() is None, "redis-server exited at start"
                assert time.monotonic() < deadline, "redis-server did not answer PING"
                time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL the server (its data is gone)."""
        if self._proc is not None and self._proc.poll() is None:
            os.kill(self._proc.pid, signal.SIGCONT)
            self._proc.kill()
            self._proc.wait()

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing is answered."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self._proc is not None
        os.kill(self._proc.pid, signal.SIGCONT)

    def close(self) -> None:
        """Stop the server and remove its directory."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)
