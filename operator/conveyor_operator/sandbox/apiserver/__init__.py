"""An emulated Kubernetes API server for tests and the sandbox, built on kmock.

Start it with :class:`SandboxApiServer` (``async with``), or from a shell::

    python -m conveyor_operator.sandbox.apiserver --port 8001 --kubeconfig /tmp/kubeconfig

kubectl and kopf work against it as against a real cluster: discovery, CRDs, validation,
resourceVersions, status subresources, watches, server-side printing and OpenAPI.
"""

from .requestinfo import RequestRecord
from .server import SandboxApiServer

__all__ = ["RequestRecord", "SandboxApiServer"]
