"""The outbound guard (issue 11 item 5): the pure decision as a table, CIDR parsing and the
worker setting, and the guarded client refusing before any connection is made."""

from __future__ import annotations

import ipaddress
import re
import socket

import httpx
import pytest

from conveyor_engine.egress import (
    EgressPolicy,
    host_address,
    ipv4_host,
    parse_cidr,
    refusal_message,
)
from conveyor_engine.sdk.testing import TaskEnvironment
from conveyor_engine.settings import SettingsError, load_settings
from conveyor_engine.tasktypes.base import Failed
from conveyor_engine.tasktypes.http import HttpTask
from conveyor_engine.tasktypes.http_egress import EgressDenied, guarded_client

DEFAULT = EgressPolicy()
REOPENED = EgressPolicy.parse(allow=["169.254.0.0/16"])
METADATA_ONLY_REOPENED = EgressPolicy.parse(allow=["169.254.170.2/32"])
DENY_LOOPBACK = EgressPolicy.parse(deny=["127.0.0.1/32"])
BOTH = EgressPolicy.parse(allow=["10.0.0.0/8", "169.254.0.0/16"],
                          deny=["10.1.0.0/16", "169.254.169.254"])
MAPPED_DENY = EgressPolicy.parse(deny=["::ffff:10.0.0.0/104"])


@pytest.mark.parametrize(("policy", "address", "allowed", "rule"), [
    # refused by default: link-local and cloud metadata
    (DEFAULT, "169.254.169.254", False, "169.254.0.0/16"),
    (DEFAULT, "169.254.170.2", False, "169.254.0.0/16"),          # AWS ECS task metadata
    (DEFAULT, "fe80::a9fe:a9fe", False, "fe80::/10"),              # OpenStack's IPv6
    (DEFAULT, "fd00:ec2::254", False, "fd00:ec2::254/128"),        # AWS IMDS IPv6
    (DEFAULT, "fd20:ce::254", False, "fd20:ce::254/128"),          # GCE metadata IPv6
    (DEFAULT, "100.100.100.200", False, "100.100.100.200/32"),     # Alibaba Cloud
    (DEFAULT, "168.63.129.16", False, "168.63.129.16/32"),         # Azure WireServer
    # IPv4-mapped IPv6 is judged as the IPv4 address it carries
    (DEFAULT, "::ffff:169.254.169.254", False, "169.254.0.0/16"),
    (DEFAULT, "::ffff:127.0.0.1", True, "default"),
    # loopback, private, shared and public addresses stay allowed
    (DEFAULT, "127.0.0.1", True, "default"),
    (DEFAULT, "::1", True, "default"),
    (DEFAULT, "10.2.3.4", True, "default"),
    (DEFAULT, "192.168.1.1", True, "default"),
    (DEFAULT, "fd00::1", True, "default"),                          # ULA beside AWS's
    (DEFAULT, "fd00:ec2::253", True, "default"),                    # only ::254 is metadata
    (DEFAULT, "100.100.100.201", True, "default"),
    (DEFAULT, "93.184.216.34", True, "default"),
    # allow re-opens a default-refused range, whole or in part
    (REOPENED, "169.254.169.254", True, "spec.egress.allow 169.254.0.0/16"),
    (METADATA_ONLY_REOPENED, "169.254.170.2", True, "spec.egress.allow 169.254.170.2/32"),
    (METADATA_ONLY_REOPENED, "169.254.169.254", False, "169.254.0.0/16"),
    # deny wins over allow, and over the default allow
    (BOTH, "169.254.169.254", False, "spec.egress.deny 169.254.169.254/32"),
    (BOTH, "169.254.170.2", True, "spec.egress.allow 169.254.0.0/16"),
    (BOTH, "10.1.2.3", False, "spec.egress.deny 10.1.0.0/16"),
    (BOTH, "10.2.3.4", True, "spec.egress.allow 10.0.0.0/8"),
    (DENY_LOOPBACK, "127.0.0.1", False, "spec.egress.deny 127.0.0.1/32"),
    (DENY_LOOPBACK, "::ffff:127.0.0.1", False, "spec.egress.deny 127.0.0.1/32"),
    (DENY_LOOPBACK, "127.0.0.2", True, "default"),
    (DENY_LOOPBACK, "::1", True, "default"),
    # a mapped range in a rule is the IPv4 range it maps
    (MAPPED_DENY, "10.9.9.9", False, "spec.egress.deny 10.0.0.0/8"),
])
def test_decide(policy: EgressPolicy, address: str, allowed: bool, rule: str) -> None:
    decision = policy.decide(ipaddress.ip_address(address))
    assert decision.allowed is allowed
    assert decision.rule.split(" (")[0] == rule


@pytest.mark.parametrize(("text", "fragment"), [
    ("10.0.0.0/33", "'10.0.0.0/33' is not a CIDR"),
    ("example.com", "'example.com' is not a CIDR"),
    ("", "is not a CIDR"),
    ("10.0.0.1/8", "host bits set; did you mean 10.0.0.0/8?"),
])
def test_bad_cidrs_name_the_field_and_the_text(text: str, fragment: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cidr(text, "spec.egress.allow[2]")
    assert str(caught.value).startswith("spec.egress.allow[2]: ")
    assert fragment in str(caught.value)


def test_refusal_names_host_address_rule_and_the_way_out() -> None:
    address = ipaddress.ip_address("169.254.169.254")
    message = refusal_message("metadata.example", 80, address, DEFAULT.decide(address))
    assert message.startswith("egress to metadata.example:80 (address 169.254.169.254) "
                              "refused by 169.254.0.0/16")
    assert message.endswith("add the range to the WorkerPool's spec.egress.allow")
    denied = refusal_message("::1", 8080, ipaddress.ip_address("::1"),
                             EgressPolicy.parse(deny=["::1"]).decide(ipaddress.ip_address("::1")))
    assert "egress to [::1]:8080" in denied
    assert denied.endswith("remove it from the WorkerPool's spec.egress.deny")


def test_settings_read_the_ranges_and_name_a_bad_one() -> None:
    settings = load_settings(egress_allow="169.254.170.2/32, fd00:ec2::/32",
                             egress_deny="127.0.0.1")
    policy = settings.egress_policy()
    assert policy.decide(ipaddress.ip_address("169.254.170.2")).allowed
    assert not policy.decide(ipaddress.ip_address("127.0.0.1")).allowed
    assert settings.egress_allow == "169.254.170.2/32,fd00:ec2::/32"
    with pytest.raises(SettingsError) as caught:
        load_settings(egress_deny="10.0.0.0/8,10.0.0.0/99")
    assert "CONVEYOR_EGRESS_DENY" in str(caught.value)
    assert "item 2: '10.0.0.0/99' is not a CIDR" in str(caught.value)


@pytest.mark.parametrize(("url", "policy", "address"), [
    ("http://169.254.169.254/latest/meta-data/", DEFAULT, "169.254.169.254"),
    ("http://[fd00:ec2::254]/latest/meta-data/", DEFAULT, "fd00:ec2::254"),
    ("http://[::ffff:169.254.169.254]/", DEFAULT, "::ffff:a9fe:a9fe"),
    ("http://100.100.100.200/latest/meta-data", DEFAULT, "100.100.100.200"),
    # a host name is resolved and its address checked (localhost: 127.0.0.1 and/or ::1)
    ("http://localhost:9/", EgressPolicy.parse(deny=["127.0.0.0/8", "::1/128"]), None),
])
async def test_guarded_client_refuses_before_connecting(url: str, policy: EgressPolicy,
                                                         address: str | None) -> None:
    async with guarded_client(policy, timeout=5) as client:
        with pytest.raises(EgressDenied) as caught:
            await client.get(url)
    if address is not None:
        assert str(caught.value.address) == address
    assert "spec.egress" in str(caught.value)


async def test_guarded_client_still_connects_to_allowed_addresses(httpbin_url: str) -> None:
    async with guarded_client(DEFAULT, timeout=10) as client:
        response = await client.get(f"{httpbin_url}/get")
    assert response.status_code == 200
    async with guarded_client(DEFAULT, timeout=5) as client:
        # an unresolvable name is still a (retryable) connect error, not a refusal
        with pytest.raises(httpx.ConnectError):
            await client.get("http://no-such-host.invalid/")


async def test_a_redirect_hop_to_metadata_fails_the_task_without_retry(httpbin_url: str) -> None:
    """httpbin (allowed, on loopback) redirects to the metadata address: the hop is
    refused, the task fails not retryable, kind EgressDenied, naming the hop's address."""
    async with guarded_client(DEFAULT, timeout=10) as client:
        outcome = await TaskEnvironment(http=client).run(HttpTask(), {
            "url": f"{httpbin_url}/redirect-to",
            "query": {"url": "http://169.254.169.254/latest/meta-data/"}})
    assert isinstance(outcome, Failed)
    assert (outcome.retryable, outcome.kind) == (False, "EgressDenied")
    assert "egress to 169.254.169.254:80 (address 169.254.169.254) refused" in outcome.error
    assert outcome.error.startswith(f"GET {httpbin_url}/redirect-to: ")


async def test_a_literal_metadata_target_is_refused_before_it_reaches_a_proxy(monkeypatch) -> None:
    """With HTTP_PROXY set the proxy connects for the client, so the guard checks the
    literal target itself before anything is sent (the proxy here is a closed port: a
    request that got past the check would fail with a connect error instead)."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    async with guarded_client(EgressPolicy(), timeout=5) as client:
        with pytest.raises(EgressDenied, match=re.escape("169.254.0.0/16")):
            await client.get("http://169.254.169.254/latest/meta-data/")


@pytest.mark.parametrize(("host", "expected"), [
    ("169.254.169.254", "169.254.169.254"),
    ("2852039166", "169.254.169.254"),            # one 32-bit number
    ("0xa9fea9fe", "169.254.169.254"),            # hexadecimal
    ("0XA9FEA9FE", "169.254.169.254"),
    ("0251.0376.0251.0376", "169.254.169.254"),   # octal parts
    ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
    ("169.254.43518", "169.254.169.254"),         # a.b.c: c fills 16 bits
    ("169.16689662", "169.254.169.254"),          # a.b: b fills 24 bits
    ("169.254.169.254.", "169.254.169.254"),      # one trailing dot
    ("0x", "0.0.0.0"),                            # WHATWG: an empty hex number is 0
    ("127.1", "127.0.0.1"),
    ("00", "0.0.0.0"),
    ("4294967295", "255.255.255.255"),
    ("4294967296", None),                         # too large
    ("256.1.1.1", None),                          # a leading part over 255
    ("1.2.3.4.5", None),                          # five parts
    ("08.1.1.1", None),                           # 8 is no octal digit
    ("0xg1", None),
    ("1..2", None),
    ("httpbin.conveyor.test", None),
    ("example.com.", None),
    ("::1", None),
    ("", None),
])
def test_ipv4_host_reads_numeric_spellings_as_whatwg_and_inet_aton_do(
        host: str, expected: str | None) -> None:
    found = ipv4_host(host)
    assert (None if found is None else str(found)) == expected
    if expected is not None and not host.endswith(".") and host != "0x":
        assert socket.inet_aton(host) == ipaddress.IPv4Address(expected).packed


@pytest.mark.parametrize(("host", "expected"), [
    ("[fe80::1]", "fe80::1"), ("fe80::1", "fe80::1"), ("0xa9fea9fe", "169.254.169.254"),
    ("name.test", None),
])
def test_host_address_reads_literals_of_both_families(host: str, expected: str | None) -> None:
    found = host_address(host)
    assert (None if found is None else str(found)) == expected
