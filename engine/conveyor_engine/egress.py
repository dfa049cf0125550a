"""The outbound guard's decision: may an ``http`` task connect to this IP address?

Pure (``ipaddress`` only), tested as a table (``tests/unit/test_egress.py``). The I/O side,
resolving a host and connecting only to an address this module allowed, is
``tasktypes/http_egress.py``.

The rule, in order (:meth:`EgressPolicy.decide`):

1. an IPv4-mapped IPv6 address (``::ffff:169.254.169.254``, RFC 4291 §2.5.5.2) is judged
   as the IPv4 address it carries, so the mapped form cannot slip past an IPv4 rule;
2. an address in a ``deny`` range is refused (deny wins over allow);
3. an address in an ``allow`` range is allowed (allow can re-open a default-refused range);
4. an address in a :data:`DEFAULT_REFUSED` range is refused;
5. anything else is allowed: loopback and private ranges stay reachable, since tasks call
   internal services.

``allow`` and ``deny`` come from the WorkerPool's ``spec.egress`` through the worker's
``CONVEYOR_EGRESS_ALLOW`` / ``CONVEYOR_EGRESS_DENY`` settings.
"""

from __future__ import annotations

import ipaddress
import typing
from collections.abc import Iterable
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Where ``allow`` ranges are set, named in every refusal so the message says how out.
ALLOW_FIELD = "the WorkerPool's spec.egress.allow"
DENY_FIELD = "the WorkerPool's spec.egress.deny"

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


@dataclass(frozen=True)
class Rule:
    """A range refused by default and why (the why, with its source, is shown to users)."""

    network: IPNetwork
    reason: str


#: Ranges refused unless ``allow`` re-opens them. Sources:
#:
#: - 169.254.0.0/16: IPv4 link-local (RFC 3927). The instance metadata services of AWS,
#:   GCP, Azure, Oracle Cloud, DigitalOcean, Hetzner and OpenStack answer on
#:   169.254.169.254; AWS ECS task metadata on 169.254.170.2; Tencent Cloud on 169.254.0.23.
#: - fe80::/10: IPv6 link-local (RFC 4291 §2.5.6; OpenStack's fe80::a9fe:a9fe is in it).
#: - fd00:ec2::254/128: the AWS EC2 instance metadata service over IPv6 (AWS EC2 User Guide,
#:   "Access instance metadata": ``http://[fd00:ec2::254]``).
#: - fd20:ce::254/128: the Google Compute Engine metadata server over IPv6 (GCP docs,
#:   "About VM metadata": IPv6-only instances use ``fd20:ce::254``).
#: - 100.100.100.200/32: Alibaba Cloud ECS instance metadata (Alibaba Cloud docs,
#:   "Instance metadata": ``http://100.100.100.200/latest/meta-data``).
#: - 168.63.129.16/32: Azure's WireServer / platform address, which serves VM agent and
#:   extension configuration (Microsoft Learn, "What is IP address 168.63.129.16?").
DEFAULT_REFUSED: tuple[Rule, ...] = (
    Rule(ipaddress.ip_network("169.254.0.0/16"),
         "link-local, cloud metadata"),
    Rule(ipaddress.ip_network("fe80::/10"), "IPv6 link-local"),
    Rule(ipaddress.ip_network("fd00:ec2::254/128"), "AWS EC2 metadata"),
    Rule(ipaddress.ip_network("fd20:ce::254/128"), "GCE metadata"),
    Rule(ipaddress.ip_network("100.100.100.200/32"), "Alibaba Cloud metadata"),
    Rule(ipaddress.ip_network("168.63.129.16/32"), "Azure WireServer"),
)


@dataclass(frozen=True)
class Decision:
    """Whether an address may be connected to, and the rule that decided (for messages):
    ``"spec.egress.deny 10.0.0.0/8"``, ``"169.254.0.0/16 (link-local, cloud metadata)"``, or
    ``"default"`` when no rule matched and the address is allowed."""

    allowed: bool
    rule: str


def parse_cidr(text: str, field: str) -> IPNetwork:
    """``text`` as a network (``10.0.0.0/8``, ``fd00::/8``; a bare address is a /32 or
    /128). An IPv4-mapped IPv6 range becomes the IPv4 range it maps.

    Raises ``ValueError`` naming ``field`` (``"CONVEYOR_EGRESS_ALLOW"``,
    ``"spec.egress.allow[2]"``) and the bad text; host bits set (``10.0.0.1/8``) are an
    error too, suggesting the network meant, since a silently widened range is a surprise.
    """
    value = text.strip() if isinstance(text, str) else text
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: {text!r} is not a CIDR; expected e.g. 10.0.0.0/8 or fd00::/8")
    try:
        network = ipaddress.ip_network(value)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise ValueError(f"{field}: {value!r} is not a CIDR ({exc}); expected e.g. "
                             f"10.0.0.0/8 or fd00::/8") from None
        raise ValueError(f"{field}: {value!r} has host bits set; did you mean "
                         f"{loose.with_prefixlen}?") from None
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        mapped = network.network_address.ipv4_mapped
        assert mapped is not None
        return ipaddress.IPv4Network((mapped, network.prefixlen - 96))
    return network


def parse_cidrs(items: Iterable[str], field: str) -> tuple[IPNetwork, ...]:
    """Every item of ``items`` through :func:`parse_cidr`, the field named with its index
    (``field[1]``). Raises ``ValueError`` at the first bad item."""
    return tuple(parse_cidr(item, f"{field}[{i}]") for i, item in enumerate(items))


def split_cidr_list(value: str) -> list[str]:
    """A setting's comma- or whitespace-separated CIDR list as items (``""`` gives ``[]``)."""
    return [item for item in value.replace(",", " ").split() if item]


def _unmapped(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _first(address: IPAddress, networks: Iterable[IPNetwork]) -> IPNetwork | None:
    for network in networks:
        if network.version == address.version and address in network:
            return network
    return None


@dataclass(frozen=True)
class EgressPolicy:
    """The worker's guard: ``allow`` and ``deny`` ranges on top of :data:`DEFAULT_REFUSED`.

    Build it with :meth:`parse` from CIDR text; :meth:`decide` is the rule of the module
    docstring.
    """

    allow: tuple[IPNetwork, ...] = ()
    deny: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, allow: Iterable[str] = (), deny: Iterable[str] = (), *,
              allow_field: str = "allow", deny_field: str = "deny") -> EgressPolicy:
        """The policy of CIDR texts; ``ValueError`` naming the field and the bad item."""
        return cls(parse_cidrs(allow, allow_field), parse_cidrs(deny, deny_field))

    def decide(self, address: IPAddress) -> Decision:
        """Whether ``address`` may be connected to (see the module docstring)."""
        address = _unmapped(address)
        denied = _first(address, self.deny)
        if denied is not None:
            return Decision(False, f"spec.egress.deny {denied.with_prefixlen}")
        allowed = _first(address, self.allow)
        if allowed is not None:
            return Decision(True, f"spec.egress.allow {allowed.with_prefixlen}")
        for rule in DEFAULT_REFUSED:
            if rule.network.version == address.version and address in rule.network:
                return Decision(False, f"{rule.network.with_prefixlen} ({rule.reason})")
        return Decision(True, "default")


def _ipv4_number(part: str) -> int | None:
    """One part of an IPv4 host as the WHATWG URL standard's "IPv4 number parser" reads it:
    ``0x``/``0X`` prefix hexadecimal (nothing after it: 0), a leading ``0`` octal, else
    decimal; None when it is not a number in that radix."""
    if not part:
        return None
    radix = 10
    if part[:2] in ("0x", "0X"):
        part, radix = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        part, radix = part[1:], 8
    if not part:
        return 0
    digits = "0123456789abcdefABCDEF"[: radix if radix < 16 else 22]
    if not all(c in digits for c in part):
        return None
    return int(part, radix)


def ipv4_host(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a URL host spells in any form resolvers accept, or None when it is
    not such a spelling (a name, an IPv6 literal, or invalid).

    The reference is the WHATWG URL standard's IPv4 parser (https://url.spec.whatwg.org/
    #concept-ipv4-parser), which reads hosts as ``inet_aton(3)`` and ``getaddrinfo`` do:
    one to four dot-separated parts, each decimal, octal (leading ``0``) or hexadecimal
    (``0x``), the last filling the remaining bytes, one trailing dot allowed. So
    ``2852039166``, ``0xa9fea9fe``, ``0251.0376.0251.0376``, ``169.254.43518`` and
    ``169.254.169.254.`` are all 169.254.169.254. Pure.
    """
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if len(parts) > 4:
        return None
    numbers = [_ipv4_number(part) for part in parts]
    if any(n is None for n in numbers):
        return None
    *leading, last = typing.cast(list[int], numbers)
    if any(n > 255 for n in leading) or last >= 256 ** (5 - len(parts)):
        return None
    value = last + sum(n * 256 ** (3 - i) for i, n in enumerate(leading))
    return ipaddress.IPv4Address(value)


def host_address(host: str) -> IPAddress | None:
    """The IP address a URL host (as httpx gives it: IPv6 with or without brackets) is a
    literal of, in any spelling :func:`ipv4_host` reads; None for a name. Pure."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return ipv4_host(host)


def refusal_message(host: str, port: int, address: IPAddress, decision: Decision) -> str:
    """What a refused connection says: the host, the address, the rule and the way out.

    ``"egress to 169.254.169.254:80 (address 169.254.169.254) refused by 169.254.0.0/16
    (link-local, cloud metadata); to allow it, add the range to the WorkerPool's
    spec.egress.allow"``. Kept short: the task's status message is bounded.
    A deny rule's way out is to remove it from ``spec.egress.deny``.
    """
    where = f"[{host}]" if ":" in host else host
    out = (f"remove it from {DENY_FIELD}" if decision.rule.startswith("spec.egress.deny")
           else f"add the range to {ALLOW_FIELD}")
    return (f"egress to {where}:{port} (address {address}) refused by {decision.rule}; "
            f"to allow it, {out}")
