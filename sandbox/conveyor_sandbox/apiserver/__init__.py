"""An emulated Kubernetes API server for tests and the sandbox, served with aiohttp.

Start it with :class:`SandboxApiServer` (``async with``), or from a shell::

    python -m conveyor_sandbox.apiserver --port 8001 --kubeconfig /tmp/kubeconfig

kubectl and kopf work against it as against a real cluster: discovery, CRDs, validation,
resourceVersions, status subresources, watches, server-side printing and OpenAPI.

It imports no other Conveyor package (an import-linter contract): it is a Kubernetes API,
not a part of Conveyor, and could be lifted out whole.
"""

from .reactions import Reaction
from .requestinfo import RequestRecord
from .server import SandboxApiServer

__all__ = ["Reaction", "RequestRecord", "SandboxApiServer"]
