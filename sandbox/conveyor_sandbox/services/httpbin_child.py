"""The httpbin child: ``python -m conveyor_sandbox.services.httpbin_child <fd> [<host>...]``.

It serves httpbin's Flask app behind :func:`.httpbin.routed`, threaded, on the listening
socket whose file descriptor is ``<fd>`` (the parent, :func:`.httpbin.httpbin_server`, binds
it, so there is no race for the port); ``<host>`` arguments replace
:data:`.httpbin.SANDBOX_HOST` as the hosts served through the proxy.
"""

from __future__ import annotations

import sys

from conveyor_sandbox.services.httpbin import SANDBOX_HOST, routed


def main(argv: list[str]) -> None:
    """Serve httpbin behind :func:`routed` on the inherited listening socket ``argv[0]``."""
    from httpbin import app  # the sandbox extra; imported here, in the child, only
    from werkzeug.serving import make_server

    hosts = argv[1:] or [SANDBOX_HOST]
    server = make_server("127.0.0.1", 0, routed(app, hosts), threaded=True, fd=int(argv[0]))
    print(f"httpbin serving {', '.join(hosts)} on {server.server_address}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
