"""The operator's ``/healthz`` and ``/readyz`` endpoints (aiohttp), answered from
:class:`~conveyor_operator.probes.OperatorState` by the pure :mod:`.probes` decisions.

The operator serves them itself rather than through kopf's liveness endpoint because a
standby (waiting for the leader Lease, before kopf starts) must answer too.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from aiohttp import web

from .probes import OperatorState, Verdict, liveness, readiness


async def start_probe_server(port: int, state: OperatorState,
                             stall_after: Callable[[], float]) -> web.AppRunner:
    """Serve ``/healthz`` and ``/readyz`` on ``0.0.0.0:port``; 200 or 503 with the verdict's
    message as text. Returns the runner; ``await runner.cleanup()`` stops it."""

    def answer(decide: Callable[[OperatorState, float, float], Verdict]):
        async def handle(_: web.Request) -> web.Response:
            verdict = decide(state, time.monotonic(), stall_after())
            return web.Response(status=200 if verdict.ok else 503, text=verdict.message + "\n")
        return handle

    app = web.Application()
    app.add_routes([web.get("/healthz", answer(liveness)), web.get("/readyz", answer(readiness))])
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, "0.0.0.0", port).start()
    return runner
