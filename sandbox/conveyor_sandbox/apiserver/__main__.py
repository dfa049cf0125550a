"""``python -m conveyor_sandbox.apiserver``: serve until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .server import SandboxApiServer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conveyor_sandbox.apiserver",
        description="Serve an emulated Kubernetes API on a loopback address.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    parser.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    parser.add_argument("--kubeconfig", help="write a kubeconfig pointing here to this path")
    parser.add_argument("--namespace", default="default", help="the kubeconfig's namespace")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


async def _serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with SandboxApiServer(args.host, args.port, keep_history=False) as server:
        if args.kubeconfig:
            server.write_kubeconfig(args.kubeconfig, args.namespace)
        print(f"serving the Kubernetes API at {server.url}", flush=True)
        if args.kubeconfig:
            print(f"kubeconfig: {args.kubeconfig}", flush=True)
        await stop.wait()
    print("stopped", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
