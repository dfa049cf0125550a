"""A kubeconfig for the sandbox API server (plain HTTP on loopback, no credentials)."""

from __future__ import annotations

from pathlib import Path

import yaml

CONTEXT = "conveyor-sandbox"


def kubeconfig(url: str, namespace: str = "default") -> dict[str, object]:
    """A ``kind: Config`` whose cluster, user and context are all named ``conveyor-sandbox``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": url}}],
        "users": [{"name": CONTEXT, "user": {}}],
        "contexts": [{"name": CONTEXT, "context": {
            "cluster": CONTEXT, "user": CONTEXT, "namespace": namespace,
        }}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write_kubeconfig(path: str | Path, url: str, namespace: str = "default") -> Path:
    """Write the kubeconfig (mode 0600, as kubectl expects of credentials files)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(kubeconfig(url, namespace), sort_keys=False))
    target.chmod(0o600)
    return target
