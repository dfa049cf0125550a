"""The sandbox's httpbin is the workers' HTTP_PROXY and serves only httpbin.conveyor.test.

Any other host reached through the proxy (a typo, a made-up name) is answered 502 Bad
Gateway with a body naming the one host the sandbox serves, so its task fails and says why.
All traffic goes to the sandbox's proxy on 127.0.0.1; the hosts in URLs are never resolved.
"""

from __future__ import annotations

import aiohttp
import pytest

from conveyor_sandbox.sandbox import Sandbox
from conveyor_sandbox.services.httpbin import SANDBOX_HOST, refusal
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import manifest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(
    ("target", "served"),
    [
        ("/get", True),                                    # direct, origin form
        ("http://httpbin.conveyor.test/json", True),
        ("http://HTTPBIN.conveyor.test:80/json", True),    # host names are case-insensitive
        ("http://httpbin.conveyor.tset/json", False),      # a typo
        ("http://nonexistent.invalid/get", False),
        ("http://httpbin.conveyor.test.evil/get", False),
        ("http://httpbin.conveyor.test:8080/get", False),  # nothing listens on other ports
        ("https://httpbin.conveyor.test/get", False),      # no TLS behind the proxy
        ("httpbin.conveyor.test:443", False),              # CONNECT: no tunnels
    ],
)
def test_only_the_sandbox_host_is_routed_to_httpbin(target: str, served: bool) -> None:
    why = refusal(target)
    assert (why is None) == served, why
    if not served:
        assert f"http://{SANDBOX_HOST}" in why


def test_more_hosts_can_be_routed_to_httpbin() -> None:
    hosts = (SANDBOX_HOST, "httpbin.reports.svc.cluster.local")
    assert refusal("http://httpbin.reports.svc.cluster.local/anything", hosts) is None
    assert refusal("http://httpbin.conveyor.test/get", hosts) is None
    why = refusal("http://httpbin.other.svc.cluster.local/get", hosts)
    assert why == ("no such host in the Conveyor sandbox: httpbin.other.svc.cluster.local; the "
                   "sandbox serves only http://httpbin.conveyor.test, "
                   "http://httpbin.reports.svc.cluster.local (its httpbin)")


@pytest.mark.parametrize("url", ["http://nonexistent.invalid/get",
                                 "http://httpbin.conveyor.tset/json"])
async def test_the_proxy_answers_bad_gateway_for_any_other_host(sandbox: Sandbox, url: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, proxy=sandbox.httpbin_url) as response:
            body = await response.text()
            assert response.status == 502, body
        assert body.startswith("no such host in the Conveyor sandbox: ")
        assert f"only http://{SANDBOX_HOST}" in body
        async with session.get(f"http://{SANDBOX_HOST}/get",
                               proxy=sandbox.httpbin_url) as response:
            assert response.status == 200
            assert (await response.json())["headers"]["Host"] == SANDBOX_HOST


async def test_a_task_calling_a_mistyped_host_fails_and_says_why(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    await kubectl.run("apply", "-f", "-", stdin=manifest("""
        apiVersion: conveyor.dev/v1alpha1
        kind: Workflow
        metadata: {name: typo-host}
        spec:
          tasks:
            - {name: good, type: http, params: {url: "http://httpbin.conveyor.test/json"}}
            - {name: typo, type: http, dependsOn: [good],
               params: {url: "http://httpbin.conveyor.tset/json"}}
        ---
        apiVersion: conveyor.dev/v1alpha1
        kind: Execution
        metadata: {name: typo-host-run}
        spec: {workflowRef: {name: typo-host}}
    """))
    done = (await sandbox.wait_finished([("default", "typo-host-run")], timeout=60))[0]
    status = done["status"]
    assert status["phase"] == "Failed", status
    tasks = {t["name"]: t for t in status["tasks"]}
    assert tasks["good"]["phase"] == "Succeeded"
    assert tasks["typo"]["phase"] == "Failed"
    message = tasks["typo"]["message"]
    assert message.startswith("HTTP 502 from GET http://httpbin.conveyor.tset/json"), message
    assert ("no such host in the Conveyor sandbox: httpbin.conveyor.tset; the sandbox serves "
            f"only http://{SANDBOX_HOST} (its httpbin)") in message, message
