"""Fault injection: answer matching requests with an error before the API handles them.

Tests use it to see how clients cope with a failing API server (a 503 on a PATCH, a 429 on
a list)::

    api.react("patch", "", "v1", "configmaps", status=503)
    api.stall("*", "conveyor.dev", "*", "executions")   # a black hole: never answered

A :class:`Reaction` matches on the request's verb, group, version and resource (as parsed
by :mod:`.requestinfo`; ``"*"`` matches any, and ``""`` is the core group) and takes
precedence over the emulated API, until removed from :attr:`Reactions.active`. The answer
is a ``Status`` object, as from a real API server, recorded in the request log like any
other answer.
"""

from __future__ import annotations

import asyncio
import dataclasses

from .errors import ApiError
from .requestinfo import RequestInfo

# HTTP status -> StatusReason, as k8s.io/apimachinery/pkg/api/errors.NewGenericServerResponse
# assigns them; other codes get "Unknown" there too.
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def reason_for(status: int) -> str:
    """The ``StatusReason`` the API server gives an HTTP ``status`` (``Unknown`` if none)."""
    return _REASONS.get(status, "Unknown")


@dataclasses.dataclass(frozen=True)
class Reaction:
    """Answer requests for ``verb`` on ``group/version/resource`` with ``status``.

    ``reason`` defaults to :func:`reason_for` the status, ``message`` to a sentence saying the
    failure was injected (so a log line never passes it off as a real server's).
    """

    verb: str
    group: str
    version: str
    resource: str
    status: int
    reason: str = ""
    message: str = ""
    #: Never answer (a black-holed connection): the request hangs until the client gives up.
    stall: bool = False

    def matches(self, info: RequestInfo) -> bool:
        """Whether this reaction answers the request ``info`` (resource requests only)."""
        if not info.is_resource:
            return False
        wanted = (self.verb, self.group, self.version, self.resource)
        actual = (info.verb, info.group, info.version, info.resource)
        return all(w in ("*", a) for w, a in zip(wanted, actual, strict=True))

    def error(self) -> ApiError:
        """The error this reaction answers with."""
        return ApiError(self.status, self.reason or reason_for(self.status),
                        self.message or f"injected failure: {self.status} for {self.verb} "
                        f"{self.group or 'core'}/{self.version}/{self.resource}", {})


@dataclasses.dataclass
class Reactions:
    """The reactions in force, first match wins."""

    active: list[Reaction] = dataclasses.field(default_factory=list)

    def add(self, reaction: Reaction) -> Reaction:
        """Put ``reaction`` in force (after those already there); return it."""
        self.active.append(reaction)
        return reaction

    def answer(self, info: RequestInfo) -> ApiError | None:
        """The error to answer ``info`` with, or None to let the emulated API serve it."""
        for reaction in self.active:
            if reaction.matches(info) and not reaction.stall:
                return reaction.error()
        return None

    async def lifted(self, info: RequestInfo, poll: float = 0.05) -> None:
        """Return once no stalling reaction matches ``info`` (polled every ``poll`` s)."""
        while True:
            if not self.stalls(info):
                return
            await asyncio.sleep(poll)

    def stalls(self, info: RequestInfo) -> bool:
        """Whether ``info`` matches a stalling reaction (checked before :meth:`answer`)."""
        return any(r.stall and r.matches(info) for r in self.active)
