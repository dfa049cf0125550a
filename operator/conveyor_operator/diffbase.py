"""Where kopf keeps the last handled configuration: a digest, not a copy, for big objects.

kopf remembers the spec it last handled (its "diff base") to tell a real change from a
re-delivered event. Its annotation storage copies the whole essence (spec, labels,
annotations) into one annotation, so a Workflow of 200 tasks or an Execution with large
inputs would carry a second copy of itself; the API server refuses objects whose
annotations exceed 256 KiB in total (``metadata.annotations: Too long: must have at most
262144 bytes``, apimachinery's ``ValidateAnnotationsSize``). Conveyor's handlers never read
the old spec of a Workflow or an Execution, only whether it changed, so for them a SHA-256
digest of the essence is enough. WorkerPools are small and keep the full copy.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import kopf

DIGEST_PREFIX = "sha256:"
#: Kinds whose diff base is a digest. Their update handlers use the new body only.
DIGEST_KINDS = frozenset({"Workflow", "Execution"})


def essence_digest(essence: Any) -> str:
    """``sha256:<hex>`` of the essence as canonical JSON (sorted keys, no spaces)."""
    encoded = json.dumps(essence, sort_keys=True, separators=(",", ":")).encode()
    return DIGEST_PREFIX + hashlib.sha256(encoded).hexdigest()


class DigestDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's annotation diff base, holding a digest for :data:`DIGEST_KINDS`.

    ``fetch`` answers kopf's question "what did I handle last?": the current essence when
    its digest matches (nothing changed), otherwise a stand-in that differs from it in
    ``spec`` so that kopf sees a change there and runs the update handlers. Annotations
    written in full by an earlier version are still read as such.
    """

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: Any) -> None:
        """Write the digest (or, for other kinds, the full essence) to the annotation."""
        if body.get("kind") not in DIGEST_KINDS:
            super().store(body=body, patch=patch, essence=essence)
            return
        for full_key in self.make_keys(self.key, body=body):
            patch.metadata.annotations[full_key] = essence_digest(essence)
        self._store_marker(prefix=self.prefix, patch=patch, body=body)

    def fetch(self, *, body: kopf.Body) -> Any:
        """The last handled essence, reconstructed from its digest; None if never handled."""
        for full_key in self.make_keys(self.key, body=body):
            stored = body.metadata.annotations.get(full_key)
            if stored is None:
                continue
            if not stored.startswith(DIGEST_PREFIX):
                return json.loads(stored)
            current = self.build(body=body)
            if essence_digest(current) == stored:
                return current
            return {**current, "spec": {"conveyor.dev/last-handled": stored}}
        return None
