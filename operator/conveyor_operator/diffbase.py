"""Where kopf keeps the last handled configuration: a digest, not a copy, for big objects.

kopf remembers the spec it last handled (its "diff base") to tell a real change from a
re-delivered event. Its annotation storage copies the whole essence (spec, labels,
annotations) into one annotation, so a Workflow of 200 tasks or an Execution with large
inputs would carry a second copy of itself; the API server refuses objects whose
annotations exceed 256 KiB in total (``metadata.annotations: Too long: must have at most
262144 bytes``, apimachinery's ``ValidateAnnotationsSize``). Conveyor's handlers never read
the old spec of a Workflow or an Execution, only whether it changed, so for them a SHA-256
digest of each part of the essence (spec, labels, annotations) is enough: kopf still sees
which part changed, so a label edit does not look like a spec change. WorkerPools are
small and keep the full copy.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import kopf

DIGEST_PREFIX = "sha256:"
#: The annotation's one key, so that a digest map is never taken for a full essence.
DIGESTS_KEY = "conveyor.dev/digests"
#: Stand-in key put where a part changed: kopf then sees that part, and only it, differ.
STAND_IN_KEY = "conveyor.dev/last-handled"
#: Kinds whose diff base is a digest. Their update handlers use the new body only.
DIGEST_KINDS = frozenset({"Workflow", "Execution"})


def essence_digest(value: Any) -> str:
    """``sha256:<hex>`` of a value as canonical JSON (sorted keys, no spaces)."""
    encoded = json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
    return DIGEST_PREFIX + hashlib.sha256(encoded).hexdigest()


def _parts(essence: Mapping[str, Any]) -> dict[tuple[str, ...], Any]:
    """The essence split where kopf's handlers look: each top-level field (``spec``), and
    each field of ``metadata`` (``labels``, ``annotations``) on its own."""
    parts: dict[tuple[str, ...], Any] = {}
    for key, value in essence.items():
        if key == "metadata" and isinstance(value, Mapping):
            parts.update({("metadata", sub): v for sub, v in value.items()})
        else:
            parts[(key,)] = value
    return parts


def essence_digests(essence: Mapping[str, Any]) -> dict[str, str]:
    """One digest per part of ``essence`` (see :func:`_parts`), keyed ``spec``,
    ``metadata.labels``, ..."""
    return {".".join(path): essence_digest(value) for path, value in _parts(essence).items()}


def last_handled(current: Mapping[str, Any], digests: Mapping[str, str]) -> dict[str, Any]:
    """The essence kopf last handled, as far as a diff can tell, from the ``current`` one
    and the ``digests`` stored then (pure).

    Parts whose digest matches are the current ones; a part that changed is replaced by a
    stand-in (``{STAND_IN_KEY: digest}``); a part that did not exist then is left out.
    So kopf's diff names exactly the parts that changed: a label edit is not a spec change.
    """
    old: dict[str, Any] = {}
    parts = _parts(current)
    for path, value in parts.items():
        stored = digests.get(".".join(path))
        if stored is None:
            continue
        target = old.setdefault("metadata", {}) if path[0] == "metadata" else old
        target[path[-1]] = value if essence_digest(value) == stored else {STAND_IN_KEY: stored}
    for dotted, stored in digests.items():
        path = tuple(dotted.split(".", 1))
        if path not in parts:  # removed since: it existed, with other content
            target = old.setdefault("metadata", {}) if path[0] == "metadata" else old
            target[path[-1]] = {STAND_IN_KEY: stored}
    return old


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff base, holding per-part digests for :data:`DIGEST_KINDS`.

    ``fetch`` answers kopf's question "what did I handle last?" with :func:`last_handled`:
    the current essence where nothing changed, stand-ins where something did. Annotations
    written in full (other kinds, or an earlier version) are read as such.
    """

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        """Write the digests (or, for other kinds, the full essence) to the annotation."""
        if body.get("kind") not in DIGEST_KINDS:
            super().store(body=body, patch=patch, essence=essence)
            return
        encoded = json.dumps({DIGESTS_KEY: essence_digests(essence)}, sort_keys=True,
                             separators=(",", ":"))
        for full_key in self.make_keys(self.key, body=body):
            patch.metadata.annotations[full_key] = encoded
        self._store_marker(prefix=self.prefix, patch=patch, body=body)

    def fetch(self, *, body: kopf.Body) -> Any:
        """The last handled essence as far as a diff can tell; None if never handled."""
        for full_key in self.make_keys(self.key, body=body):
            stored = body.metadata.annotations.get(full_key)
            if stored is None:
                continue
            decoded = json.loads(stored)
            if isinstance(decoded, dict) and set(decoded) == {DIGESTS_KEY}:
                return last_handled(self.build(body=body), decoded[DIGESTS_KEY])
            return decoded
        return None
