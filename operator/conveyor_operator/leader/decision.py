"""Who holds the operator's Lease: a pure decision over (lease, identity, now).

The rules are those of client-go's ``leaderelection`` (and controller-runtime, which uses
it) on a ``coordination.k8s.io/v1`` Lease:

- no Lease yet: create it, holding it (``acquireTime = renewTime = now``, 0 transitions);
- we hold it: renew it (``renewTime = now``; ``acquireTime`` and transitions unchanged);
- another holder whose ``renewTime + leaseDurationSeconds`` has passed, or no holder (a
  leader released it on a graceful stop): take it over (``acquireTime = now``, transitions
  + 1 when the holder changes);
- another holder whose lease is still valid: wait.

Expiry uses the duration the holder wrote into the Lease, not ours, as client-go does.
A leader that has not renewed within its renew deadline must stop acting
(:func:`must_stop`), and the renew deadline is shorter than the lease duration, so the old
leader has stopped before anyone else may take over (clocks within that margin).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any


class LeaseAction(StrEnum):
    """What to do with the Lease now."""

    CREATE = "create"  # no Lease: create it, held by us
    ACQUIRE = "acquire"  # expired or released: replace it, held by us
    RENEW = "renew"  # ours: replace it with a fresh renewTime
    WAIT = "wait"  # another holder's lease is valid


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    """The fields of a Lease's ``spec`` that leader election uses (times are aware UTC)."""

    holder: str | None
    duration_seconds: int
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0

    def expires(self) -> datetime | None:
        """When another candidate may take the lease over (None: at once)."""
        if not self.holder or self.renew_time is None:
            return None
        return self.renew_time + timedelta(seconds=self.duration_seconds)

    @classmethod
    def from_spec(cls, spec: dict[str, Any] | None) -> LeaseRecord:
        """Read a Lease ``spec`` as the API returns it (RFC 3339 MicroTime strings)."""
        spec = spec or {}
        return cls(holder=spec.get("holderIdentity") or None,
                   duration_seconds=int(spec.get("leaseDurationSeconds") or 0),
                   acquire_time=_parse_time(spec.get("acquireTime")),
                   renew_time=_parse_time(spec.get("renewTime")),
                   transitions=int(spec.get("leaseTransitions") or 0))

    def to_spec(self) -> dict[str, Any]:
        """The Lease ``spec`` to write (MicroTime: microseconds, ``Z``)."""
        return {"holderIdentity": self.holder or "",
                "leaseDurationSeconds": self.duration_seconds,
                "acquireTime": _format_time(self.acquire_time),
                "renewTime": _format_time(self.renew_time),
                "leaseTransitions": self.transitions}


@dataclass(frozen=True, slots=True)
class LeaseDecision:
    """``action`` and, unless waiting, the record to write; ``holder`` is who holds it after."""

    action: LeaseAction
    record: LeaseRecord | None
    holder: str | None


def decide(lease: LeaseRecord | None, identity: str, now: datetime,
           duration_seconds: int) -> LeaseDecision:
    """What candidate ``identity`` does with ``lease`` (None: none exists) at ``now``.

    ``duration_seconds`` is the lease duration this candidate writes when it holds the
    lease. Raises ``ValueError`` for an empty identity (it would read as "released").
    """
    if not identity:
        raise ValueError("identity: expected a non-empty string naming this candidate")
    if lease is None:
        mine = LeaseRecord(identity, duration_seconds, now, now, 0)
        return LeaseDecision(LeaseAction.CREATE, mine, identity)
    if lease.holder == identity:
        renewed = replace(lease, duration_seconds=duration_seconds, renew_time=now,
                          acquire_time=lease.acquire_time or now)
        return LeaseDecision(LeaseAction.RENEW, renewed, identity)
    expires = lease.expires()
    if expires is None or expires <= now:
        taken = LeaseRecord(identity, duration_seconds, now, now, lease.transitions + 1)
        return LeaseDecision(LeaseAction.ACQUIRE, taken, identity)
    return LeaseDecision(LeaseAction.WAIT, None, lease.holder)


def released(lease: LeaseRecord, now: datetime) -> LeaseRecord:
    """The record a leader writes on a graceful stop, so a standby takes over at once
    (client-go's ``ReleaseOnCancel``: empty holder, 1 s duration)."""
    return replace(lease, holder=None, duration_seconds=1, renew_time=now)


def must_stop(last_renewed: float, now: float, renew_deadline: float) -> bool:
    """True when a leader last renewed (monotonic seconds) more than ``renew_deadline``
    seconds ago: it may no longer be the holder and must stop acting."""
    return now - last_renewed > renew_deadline


def _parse_time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _format_time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
