"""A small ``kubectl apply`` for the sandbox: create, or merge-patch what exists.

Client-side apply as kubectl does it without server-side apply: look the kind up through
API discovery, ``POST`` to the collection, and on ``409 AlreadyExists`` ``PATCH`` the object
with the manifest (JSON merge patch, RFC 7386). Used by ``conveyor dev --apply`` so that a
newcomer needs no kubectl; the kubeconfig the sandbox writes works with kubectl too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml


class ApplyError(RuntimeError):
    """A manifest could not be applied; the message names the file, the object and why."""


@dataclass(frozen=True, slots=True)
class Applied:
    """One applied object: ``kind``, ``namespace`` (None when cluster-scoped), ``name``,
    ``action`` (created, configured or unchanged) and the object as stored."""

    kind: str
    namespace: str | None
    name: str
    action: str
    body: dict[str, Any]


def manifests(paths: list[Path]) -> list[tuple[Path, dict[str, Any]]]:
    """Every YAML document in ``paths`` (files, or directories read in name order).

    Raises :class:`ApplyError` for a missing path or a document that is not a mapping.
    """
    found = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")) \
            if path.is_dir() else [path]
        if not path.exists():
            raise ApplyError(f"{path}: no such file or directory")
        for file in files:
            try:
                docs = list(yaml.safe_load_all(file.read_text()))
            except yaml.YAMLError as exc:
                raise ApplyError(f"{file}: not valid YAML: {exc}") from None
            for doc in docs:
                if doc is None:
                    continue
                if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
                    raise ApplyError(f"{file}: every document needs apiVersion and kind")
                found.append((file, doc))
    return found


class Applier:
    """Applies manifests to the API at ``base_url`` (plain HTTP, the sandbox's emulator)."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str) -> None:
        self._session = session
        self._base = base_url.rstrip("/")
        self._kinds: dict[tuple[str, str], tuple[str, bool]] = {}

    async def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        key = (api_version, kind)
        if key not in self._kinds:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            async with self._session.get(self._base + prefix) as response:
                if response.status != 200:
                    raise ApplyError(f"the API serves no {api_version} (is its CRD applied?)")
                listing = await response.json()
            for resource in listing.get("resources", []):
                if "/" not in resource["name"]:
                    self._kinds[(api_version, resource["kind"])] = (
                        f"{prefix}/{{ns}}{resource['name']}", resource["namespaced"])
            if key not in self._kinds:
                raise ApplyError(f"the API has no kind {kind} in {api_version}")
        return self._kinds[key]

    async def apply(self, doc: dict[str, Any], namespace: str = "default") -> Applied:
        """Create ``doc``, or patch it when it exists; return what happened."""
        template, namespaced = await self._resource(doc["apiVersion"], doc["kind"])
        meta = doc.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            raise ApplyError(f"{doc['kind']}: metadata.name is required")
        ns = (meta.setdefault("namespace", namespace)) if namespaced else None
        collection = self._base + template.format(ns=f"namespaces/{ns}/" if ns else "")
        async with self._session.post(collection, json=doc) as response:
            body = await response.json(content_type=None)
            if response.status in (200, 201):
                return Applied(doc["kind"], ns, name, "created", body)
            if response.status != 409:
                raise ApplyError(_failure(doc, body))
        async with self._session.get(f"{collection}/{name}") as response:
            before = await response.json(content_type=None)
        patch = {k: v for k, v in doc.items() if k != "status"}
        async with self._session.patch(
            f"{collection}/{name}", json=patch,
            headers={"Content-Type": "application/merge-patch+json"},
        ) as response:
            body = await response.json(content_type=None)
            if response.status != 200:
                raise ApplyError(_failure(doc, body))
        same = before.get("metadata", {}).get("resourceVersion") == body.get(
            "metadata", {}).get("resourceVersion")
        return Applied(doc["kind"], ns, name, "unchanged" if same else "configured", body)


def _failure(doc: dict[str, Any], body: Any) -> str:
    what = f"{doc['kind']} {doc.get('metadata', {}).get('name')!r}"
    if isinstance(body, dict) and body.get("message"):
        return f"{what}: {body['message']}"
    return f"{what}: the API refused it: {body!r}"
