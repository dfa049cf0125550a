"""The operator's own CRDs, watched while it runs (issue 9, item 14).

At start the operator refuses to run against CRDs that do not match its own
(:func:`~conveyor_operator.crdcheck.check_installed_crds`). A CRD replaced later, by an
older release's for instance, would silently prune the status fields it does not know
from every write. :class:`CrdWatch` hears each change of the operator's CRDs (a kopf event
handler on ``customresourcedefinitions``) and compares it with the expected one
(:func:`~conveyor_operator.crdcheck.crd_problems`). When one stops matching it reports,
once: an ERROR log line, a Warning Event ``CrdMismatch`` on the CRD, the gauge
``conveyor_operator_crd_mismatch{crd}`` at 1, and ``/readyz`` false. When it matches
again: an INFO line, a Normal Event ``CrdMatches``, the gauge at 0, and ``repair()``,
which rewrites every status the operator wrote (the pruned fields come back).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from .crdcheck import crd_problems
from .kube import Kube, ObjectRef
from .pools import metrics
from .probes import OperatorState
from .reasons import EventReason, EventType
from .status import PhaseEvent

log = logging.getLogger(__name__)


def problem_key(name: str) -> str:
    """The key of a CRD's problem in :attr:`OperatorState.problems`."""
    return f"crd {name}"


class CrdWatch:
    """Compares each seen version of the expected CRDs (by name) and reports changes."""

    def __init__(self, kube: Kube, state: OperatorState, expected: list[dict[str, Any]],
                 repair: Callable[[], Awaitable[None]], *, event_namespace: str) -> None:
        self._kube = kube
        self._state = state
        self._expected = {crd["metadata"]["name"]: crd for crd in expected}
        self._repair = repair
        self._event_namespace = event_namespace
        for name in self._expected:
            metrics.CRD_MISMATCH.labels(name).set(0)

    async def seen(self, crd: dict[str, Any], *, deleted: bool = False) -> None:
        """React to one event of a CRD (``deleted``: it is gone); others are ignored."""
        meta = crd.get("metadata") or {}
        name = meta.get("name", "")
        want = self._expected.get(name)
        if want is None:
            return
        problems = crd_problems([] if deleted else [crd], [want])
        key = problem_key(name)
        ref = ObjectRef("", name, meta.get("uid", ""), kind="CustomResourceDefinition",
                        plural="customresourcedefinitions",
                        event_namespace=self._event_namespace,
                        api_version="apiextensions.k8s.io/v1")
        if problems and key not in self._state.problems:
            self._state.problems[key] = problems[0]
            metrics.CRD_MISMATCH.labels(name).set(1)
            log.error("CRD %s no longer matches this operator: %s", name, problems[0])
            await self._kube.post_event(ref, PhaseEvent(
                str(EventType.WARNING), str(EventReason.CRD_MISMATCH), problems[0]))
        elif not problems and key in self._state.problems:
            del self._state.problems[key]
            metrics.CRD_MISMATCH.labels(name).set(0)
            log.info("CRD %s matches this operator again; rewriting status", name)
            await self._kube.post_event(ref, PhaseEvent(
                str(EventType.NORMAL), str(EventReason.CRD_MATCHES),
                "the CRD matches this operator again; statuses are rewritten"))
            await self._repair()
