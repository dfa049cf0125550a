"""Private Redis servers for fault tests: a plain one to pause, a Sentinel group, a Cluster.

All on loopback ports chosen by the kernel, in temporary directories, keeping nothing on
disk, stopped on exit. Each yields an object that knows its processes, so a test can kill
(``SIGKILL``) or pause (``SIGSTOP``/``SIGCONT``) a real server:

* :func:`private_redis` - one ``redis-server`` (:class:`RedisProcess`);
* :func:`sentinel_group` - a master, one replica and one ``redis-sentinel`` with quorum 1,
  fast failover timings (:class:`SentinelGroup`, URL ``redis+sentinel://...``);
* :func:`redis_cluster` - three masters created with ``redis-cli --cluster create``
  (:class:`RedisCluster`, URL ``redis+cluster://...``).

Raise :class:`ServerStartError` when a binary is missing (Debian: ``redis-server``,
``redis-sentinel``, ``redis-tools``) or a server does not come up, with the end of its log.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import redis

from .base import (
    START_TIMEOUT_SECONDS,
    ServerStartError,
    find_free_port,
    scratch_dir,
    stop_process,
    tail,
)


def _binary(name: str, package: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ServerStartError(f"{name} is not on PATH; install it (Debian: apt-get install "
                               f"{package})")
    return found


def _until(what: str, check: Callable[[], bool], log: Path,
           timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Poll ``check`` (exceptions count as "not yet") until it is true or ``timeout``."""
    deadline = time.monotonic() + timeout
    last = "not checked"
    while time.monotonic() < deadline:
        try:
            if check():
                return
            last = "condition false"
        except Exception as exc:  # not up yet
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.05)
    raise ServerStartError(f"{what} within {timeout:.0f}s ({last}); end of {log}:\n{tail(log)}")


def _client(port: int) -> redis.Redis:
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2,
                       socket_connect_timeout=2, decode_responses=True)


@dataclass
class RedisProcess:
    """One private ``redis-server`` (or ``redis-sentinel``): its ``port``, process, log."""

    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def pause(self) -> None:
        """``SIGSTOP``: the server keeps its connections but answers nothing (a black hole)."""
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """``SIGCONT`` after :meth:`pause`."""
        os.kill(self.proc.pid, signal.SIGCONT)

    def kill(self) -> None:
        """``SIGKILL`` and reap: a crash, with no chance to tell anyone."""
        with contextlib.suppress(ProcessLookupError):
            self.resume()
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        """Stop if still running (``SIGCONT`` first, so a paused server can exit)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.resume()
            stop_process(self.proc)


def _start(binary: str, args: list[str], directory: Path, name: str) -> RedisProcess:
    directory.mkdir(parents=True, exist_ok=True)
    log = directory / f"{name}.log"
    port = int(args[args.index("--port") + 1])
    with log.open("ab") as log_file:
        proc = subprocess.Popen([binary, *args, "--dir", str(directory), "--logfile", str(log)],
                                stdin=subprocess.DEVNULL, stdout=log_file,
                                stderr=subprocess.STDOUT)
    server = RedisProcess(port, proc, log)
    try:
        _until(f"{name} on port {port} did not answer PING", lambda: _client(port).ping(), log)
    except BaseException:
        server.stop()
        raise
    return server


def _server_args(port: int, *extra: str) -> list[str]:
    return ["--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            *extra]


@contextlib.contextmanager
def private_redis() -> Iterator[RedisProcess]:
    """A private ``redis-server`` that a test may pause, kill or restart; stopped on exit."""
    binary = _binary("redis-server", "redis-server")
    with scratch_dir("conveyor-redis-") as tmp:
        server = _start(binary, _server_args(find_free_port()), tmp, "redis")
        try:
            yield server
        finally:
            server.stop()


@dataclass
class SentinelGroup:
    """A master, its replica and a sentinel watching them under ``master_name``."""

    master_name: str
    servers: list[RedisProcess]
    sentinel: RedisProcess
    directory: Path

    @property
    def url(self) -> str:
        """``redis+sentinel://127.0.0.1:<sentinel port>/<master name>/0`` (Conveyor's form)."""
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{self.master_name}/0"

    def master_port(self) -> int:
        """The port of the master as the sentinel names it now."""
        _host, port = _client(self.sentinel.port).sentinel_get_master_addr_by_name(
            self.master_name)
        return int(port)

    def master(self) -> RedisProcess:
        """The server process that is the master now."""
        port = self.master_port()
        return next(s for s in self.servers if s.port == port)

    def wait_replicated(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Until the replica's link to the master is up and the sentinel knows the replica."""
        master = self.master()
        replica = next(s for s in self.servers if s is not master)

        def ready() -> bool:
            link = _client(replica.port).info("replication").get("master_link_status")
            known = _client(self.sentinel.port).sentinel_slaves(self.master_name)
            return link == "up" and any(int(r["port"]) == replica.port for r in known)

        _until("the replica did not replicate or the sentinel did not see it", ready,
               replica.log, timeout)


@contextlib.contextmanager
def sentinel_group(master_name: str = "conveyor") -> Iterator[SentinelGroup]:
    """Start a Sentinel group on loopback: master, one replica, one sentinel (quorum 1).

    The sentinel calls the master down after 1 s without an answer and fails over to the
    replica (``down-after-milliseconds 1000``, ``failover-timeout 3000``). Everything is
    stopped on exit.
    """
    server_bin = _binary("redis-server", "redis-server")
    sentinel_bin = _binary("redis-sentinel", "redis-sentinel")
    with scratch_dir("conveyor-sentinel-") as tmp, contextlib.ExitStack() as stack:
        master = _start(server_bin, _server_args(find_free_port()), tmp / "master", "master")
        stack.callback(master.stop)
        replica = _start(server_bin, _server_args(
            find_free_port(), "--replicaof", "127.0.0.1", str(master.port)),
            tmp / "replica", "replica")
        stack.callback(replica.stop)
        port = find_free_port()
        config = tmp / "sentinel" / "sentinel.conf"
        config.parent.mkdir()
        config.write_text(
            f"port {port}\nbind 127.0.0.1\n"
            f"sentinel monitor {master_name} 127.0.0.1 {master.port} 1\n"
            f"sentinel down-after-milliseconds {master_name} 1000\n"
            f"sentinel failover-timeout {master_name} 3000\n"
            f"sentinel parallel-syncs {master_name} 1\n")
        log = config.parent / "sentinel.log"
        with log.open("ab") as log_file:
            proc = subprocess.Popen(
                [sentinel_bin, str(config), "--dir", str(config.parent), "--logfile", str(log)],
                stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
        sentinel = RedisProcess(port, proc, log)
        stack.callback(sentinel.stop)
        _until("redis-sentinel did not answer", lambda: _client(port).ping(), log)
        group = SentinelGroup(master_name, [master, replica], sentinel, tmp)
        group.wait_replicated()
        yield group


@dataclass
class RedisCluster:
    """Three master ``redis-server``s forming one Redis Cluster (all 16384 slots)."""

    nodes: list[RedisProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """``redis+cluster://127.0.0.1:<p1>,127.0.0.1:<p2>,...`` (Conveyor's form)."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)


@contextlib.contextmanager
def redis_cluster(masters: int = 3) -> Iterator[RedisCluster]:
    """Start ``masters`` cluster-enabled ``redis-server``s and join them with
    ``redis-cli --cluster create ... --cluster-replicas 0 --cluster-yes``; stopped on exit.

    Each node's cluster bus gets its own free port (``--cluster-port``), since the default
    (port + 10000) may be past 65535 for a kernel-chosen port.
    """
    server_bin = _binary("redis-server", "redis-server")
    cli = _binary("redis-cli", "redis-tools")
    with scratch_dir("conveyor-cluster-") as tmp, contextlib.ExitStack() as stack:
        cluster = RedisCluster()
        for i in range(masters):
            node = _start(server_bin, _server_args(
                find_free_port(), "--cluster-enabled", "yes", "--cluster-port",
                str(find_free_port()), "--cluster-config-file", "nodes.conf",
                "--cluster-node-timeout", "2000"), tmp / f"node{i}", f"node{i}")
            stack.callback(node.stop)
            cluster.nodes.append(node)
        create = subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{n.port}" for n in cluster.nodes),
             "--cluster-replicas", "0", "--cluster-yes"],
            stdin=subprocess.DEVNULL, capture_output=True, timeout=START_TIMEOUT_SECONDS,
            check=False)
        if create.returncode != 0:
            raise ServerStartError(
                f"redis-cli --cluster create failed ({create.returncode}): "
                f"{(create.stdout + create.stderr).decode(errors='replace')[-2000:]}")
        for node in cluster.nodes:
            _until("the cluster did not reach cluster_state:ok",
                   lambda n=node: _client(n.port).cluster("info")["cluster_state"] == "ok",
                   node.log)
        yield cluster
