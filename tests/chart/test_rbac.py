"""The operator's RBAC: every API call it makes is allowed, and nothing unused is granted.

The calls come from a real run: the session's sandbox (emulated API, real operator and
workers; ``chart_sandbox``), driven through what the operator does in production:
Workflows (valid and invalid), Executions run to the end and deleted while running, a
WorkerPool created, changed and deleted, an operator restart. Each request the operator
sent (user agents of kopf and kubernetes_asyncio) must be allowed by the chart's
ClusterRole/Roles bound to the operator's ServiceAccount, rendered for the sandbox's
namespace; each (group, resource, verb) granted must have been used, or be in
``NOT_EXERCISED`` with the reason this run cannot use it.
"""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from conveyor_sandbox import services
from conveyor_sandbox.sandbox import Sandbox, SandboxConfig
from tests.chart.helmchart import VALUE_SETS, render
from tests.chart.rbac import (
    DISCOVERY_RULES,
    Grant,
    allowed,
    grants_for,
    rbac_allows,
    unused_rules,
)
from tests.e2e.kubectl import Kubectl

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_AGENTS = ("kopf/", "OpenAPI-Generator/")
SANDBOX_NAMESPACE = "default"
#: Granted but not used by this run, each with the reason. A stale entry fails the test too.
NOT_EXERCISED: dict[tuple[str, str, str], str] = {
    ("", "secrets", "get"): "only pools with spec.redis.urlSecretRef read a Secret",
    ("apps", "deployments", "delete"):
        "pool_deleted's fallback: garbage collection (the owner reference) removes a deleted "
        "pool's Deployment first, and pools carry no finalizer, so kopf rarely gets there",
}


@dataclass
class Req:
    """A request for the table tests (the shape of RequestRecord)."""

    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    is_resource: bool = True
    path: str = ""


RULES = [
    {"apiGroups": ["conveyor.dev"], "resources": ["executions", "executions/status"],
     "verbs": ["list", "watch", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": ["op"],
     "verbs": ["get", "patch"]},
    {"apiGroups": [""], "resources": ["*/scale"], "verbs": ["get"]},
    {"apiGroups": ["*"], "resources": ["widgets"], "verbs": ["*"]},
    {"nonResourceURLs": ["/healthz", "/logs/*"], "verbs": ["get"]},
]
TABLE = [
    (Req("list", "conveyor.dev", "executions"), True),
    (Req("patch", "conveyor.dev", "executions", "status", "ns", "x"), True),
    (Req("update", "conveyor.dev", "executions", "status", "ns", "x"), False),  # verb
    (Req("patch", "conveyor.dev", "workflows", "", "ns", "x"), False),  # resource
    (Req("list", "other.dev", "executions"), False),  # group
    (Req("patch", "conveyor.dev", "executions", "finalize", "ns", "x"), False),  # subresource
    (Req("get", "apps", "deployments", "", "ns", "op"), True),
    (Req("get", "apps", "deployments", "", "ns", "other"), False),  # resourceNames
    (Req("list", "apps", "deployments", "", "ns"), False),  # list names nothing
    (Req("get", "", "pods", "scale", "ns", "p"), True),  # */scale
    (Req("get", "", "pods", "", "ns", "p"), False),
    (Req("delete", "any.group", "widgets", "", "ns", "w"), True),  # wildcards
    (Req("get", is_resource=False, path="/healthz"), True),
    (Req("get", is_resource=False, path="/logs/kube"), True),
    (Req("post", is_resource=False, path="/healthz"), False),
    (Req("get", is_resource=False, path="/metrics"), False),
]


@pytest.mark.parametrize(("request_", "expected"), TABLE, ids=[str(i) for i in range(len(TABLE))])
def test_rbac_allows(request_: Req, expected: bool) -> None:
    assert rbac_allows(RULES, request_) is expected


def test_namespace_scope_of_grants() -> None:
    role = Grant(({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},), "team-a")
    cluster = Grant(({"apiGroups": [""], "resources": ["nodes"], "verbs": ["get"]},))
    assert allowed([role], Req("list", "", "pods", namespace="team-a"))
    assert not allowed([role], Req("list", "", "pods", namespace="team-b"))
    assert not allowed([role], Req("list", "", "pods"))  # all namespaces
    assert allowed([cluster], Req("get", "", "nodes", name="n1"))


def test_grants_follow_bindings_to_the_account() -> None:
    docs = [d.obj for d in render({}, namespace="ns")]
    grants = grants_for(docs, "conveyor-operator", "ns")
    assert sorted(g.source for g in grants) == ["ClusterRole/conveyor-operator",
                                               "Role/conveyor-operator-leader in ns",
                                               "Role/conveyor-operator-workers in ns"]
    assert grants_for(docs, "conveyor-worker", "ns") == []
    assert grants_for(docs, "conveyor-operator", "elsewhere") == []


@pytest.mark.parametrize("values_set", sorted(VALUE_SETS))
def test_worker_accounts_have_no_kubernetes_rights(values_set: str) -> None:
    """Workers never talk to Kubernetes (issue 11): no Role or ClusterRole reaches the
    chart's worker account or an account a pool names, in any namespace, and the chart's
    worker account mounts no token."""
    values = VALUE_SETS[values_set]
    docs = [d.obj for d in render(values, namespace="ns")]
    accounts = {"conveyor-worker", (values.get("defaultPool") or {}).get("serviceAccountName")}
    pools = [d for d in docs if d["kind"] == "WorkerPool"]
    accounts |= {p["spec"].get("serviceAccountName") for p in pools}
    for account in sorted(a for a in accounts if a):
        for namespace in ("ns", "workflows", "batch", "default"):
            grants = grants_for(docs, account, namespace)
            assert grants == [], f"{account} in {namespace}: {[g.source for g in grants]}"
    for doc in docs:
        if doc["kind"] == "ServiceAccount" and doc["metadata"]["name"] == "conveyor-worker":
            assert doc["automountServiceAccountToken"] is False


@pytest.mark.parametrize(("values", "namespace", "expected"), [
    ({}, "team-a", True),   # all namespaces: any Namespace object
    ({"operator": {"watchNamespace": "team-a"}}, "team-a", True),   # its own one only
    ({"operator": {"watchNamespace": "team-a"}}, "team-b", False),
])
def test_the_operator_may_read_a_namespace_for_its_default_ttl(
    values: dict, namespace: str, expected: bool
) -> None:
    docs = [d.obj for d in render(values, namespace="ns") if not d.is_hook]
    grants = grants_for(docs, "conveyor-operator", "ns")
    # GET /api/v1/namespaces/{name}: the request's namespace is the name (as the API server's).
    request = Req("get", "", "namespaces", "", namespace, namespace)
    assert allowed(grants, request) is expected
    assert not allowed(grants, Req("update", "", "namespaces", "", namespace, namespace))


def test_unused_rules_lists_unexercised_triples() -> None:
    rules = [{"apiGroups": ["apps"], "resources": ["deployments"],
              "verbs": ["get", "delete"]}]
    used = [Req("get", "apps", "deployments", "", "ns", "d")]
    assert unused_rules(rules, used) == [("apps", "deployments", "delete")]


# -- the recorded run ----------------------------------------------------------------------

POOL = textwrap.dedent("""
    apiVersion: conveyor.dev/v1alpha1
    kind: WorkerPool
    metadata: {name: rbac-check}
    spec: {namespace: default, minReplicas: 1, maxReplicas: 2, concurrency: 4}
""")
SLOW = textwrap.dedent("""
    apiVersion: conveyor.dev/v1alpha1
    kind: Workflow
    metadata: {name: rbac-slow}
    spec: {tasks: [{name: nap, type: wait, params: {duration: 60s}}]}
    ---
    apiVersion: conveyor.dev/v1alpha1
    kind: Execution
    metadata: {name: rbac-slow-1}
    spec: {workflowRef: {name: rbac-slow}}
    ---
    apiVersion: conveyor.dev/v1alpha1
    kind: Workflow
    metadata: {name: rbac-invalid}
    spec: {tasks: [{name: a, type: set, dependsOn: [nope]}]}
    ---
    apiVersion: conveyor.dev/v1alpha1
    kind: Workflow
    metadata: {name: rbac-ttl}
    spec:
      executionDefaults: {ttlSecondsAfterFinished: 0}
      tasks: [{name: a, type: set, params: {v: 1}}]
    ---
    apiVersion: conveyor.dev/v1alpha1
    kind: Execution
    metadata: {name: rbac-ttl-1}
    spec: {workflowRef: {name: rbac-ttl}}
""")


def deployments(sandbox: Sandbox) -> dict[str, dict]:
    return {d["metadata"]["name"]: d
            for d in sandbox.api.objects("apps", "v1", "deployments", SANDBOX_NAMESPACE)}


def container_env(deployment: dict) -> dict[str, str]:
    env = deployment["spec"]["template"]["spec"]["containers"][0].get("env", [])
    return {e["name"]: e.get("value", "") for e in env}


async def exercise(sandbox: Sandbox, kubectl: Kubectl) -> None:
    """Drive the operator through everything it does (see the module docstring)."""
    names = ["data-pipeline-example", "fan-out-fan-in-example", "retry-recovers-example"]
    await kubectl.run("apply", "-f", str(ROOT / "examples"))
    await kubectl.run("apply", "-f", "-", stdin=SLOW)
    await sandbox.wait_finished([(SANDBOX_NAMESPACE, n) for n in names], timeout=120)

    async def slow_running() -> bool:
        found = await sandbox.get("executions", "rbac-slow-1")
        return (found or {}).get("status", {}).get("phase") == "Running"

    await sandbox.until(slow_running, timeout=60, what="rbac-slow-1 to run")
    # ttlSecondsAfterFinished: the operator reads the finished Execution and deletes it.
    await sandbox.until(lambda: _gone(sandbox, "rbac-ttl-1"), timeout=60,
                        what="the finished Execution with a TTL of 0 to be deleted")
    await kubectl.run("delete", "execution", "rbac-slow-1", "--wait=false")
    await sandbox.until(lambda: _gone(sandbox, "rbac-slow-1"), timeout=60,
                        what="the deleted Execution to lose its finalizer")

    await kubectl.run("apply", "-f", "-", stdin=POOL)
    await sandbox.until(lambda: "conveyor-worker-rbac-check" in deployments(sandbox),
                        timeout=60, what="the pool's Deployment")
    await kubectl.run("patch", "workerpool", "rbac-check", "--type=merge",
                      "-p", '{"spec": {"concurrency": 7}}')
    await sandbox.until(
        lambda: container_env(deployments(sandbox).get("conveyor-worker-rbac-check", {
            "spec": {"template": {"spec": {"containers": [{}]}}}})).get(
            "CONVEYOR_CONCURRENCY") == "7",
        timeout=60, what="the Deployment to follow the pool's spec")

    await sandbox.stop_operator()
    await sandbox.start_operator()  # resume handlers on existing objects

    await kubectl.run("delete", "workerpool", "rbac-check", "--wait=false")
    await sandbox.until(lambda: "conveyor-worker-rbac-check" not in deployments(sandbox),
                        timeout=60, what="the deleted pool's Deployment to go")

    # examples/schedule.yaml (applied first) ticks every minute: the operator creates a run
    # and writes the Schedule's status.
    await sandbox.until(lambda: scheduled_runs(sandbox), timeout=90,
                        what="the example Schedule's first run")


def scheduled_runs(sandbox: Sandbox) -> list[dict]:
    return [e for e in sandbox.api.objects("conveyor.dev", "v1alpha1", "executions",
                                           SANDBOX_NAMESPACE)
            if "conveyor.dev/schedule" in (e["metadata"].get("labels") or {})]


async def _gone(sandbox: Sandbox, name: str) -> bool:
    return await sandbox.get("executions", name) is None


def _by_operator(request: object) -> bool:
    return str(getattr(request, "user_agent", "")).startswith(OPERATOR_AGENTS)


@dataclass
class Recorded:
    """The operator's requests in one mode, and the chart values of that mode."""

    values: dict
    requests: list


MODES = {"all-namespaces": {}, "one-namespace": {"operator": {"watchNamespace": "default"}}}


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=sorted(MODES))
async def recorded(
    request: pytest.FixtureRequest, chart_sandbox: Sandbox, sandbox_kubectl: Kubectl,
    redis_url: str, postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Recorded]:
    """Every request the operator sent during :func:`exercise`, watching all namespaces (the
    session's sandbox) or one (a sandbox of its own, ``CONVEYOR_NAMESPACE=default``)."""
    values = MODES[request.param]
    if not values:
        await exercise(chart_sandbox, sandbox_kubectl)
        yield Recorded(values, [r for r in chart_sandbox.api.requests if _by_operator(r)])
        return
    workdir = tmp_path_factory.mktemp("rbac-one-namespace")
    async with services.fresh_database(postgres_server_url, "conveyor_rbac") as database:
        config = SandboxConfig(workdir=workdir, redis_url=redis_url, database_url=database,
                               operator_env={"CONVEYOR_NAMESPACE": SANDBOX_NAMESPACE})
        async with Sandbox(config) as sandbox:
            await exercise(sandbox, Kubectl(sandbox.kubeconfig, workdir / "kubectl-cache"))
            yield Recorded(values, [r for r in sandbox.api.requests if _by_operator(r)])


def operator_grants(values: dict) -> list[Grant]:
    docs = [d.obj for d in render(values, namespace=SANDBOX_NAMESPACE) if not d.is_hook]
    return grants_for(docs, "conveyor-operator", SANDBOX_NAMESPACE)


@pytest.mark.e2e
def test_every_operator_request_is_allowed(recorded: Recorded) -> None:
    operator_requests = recorded.requests
    grants = [*operator_grants(recorded.values),
              Grant(tuple(DISCOVERY_RULES), None, "system:discovery")]
    assert operator_requests
    denied = sorted({(r.verb, r.group, r.resource, r.subresource, r.namespace or "(cluster)",
                      r.path if not r.is_resource else "")
                     for r in operator_requests if not allowed(grants, r)})
    assert not denied, "the chart's RBAC would refuse these operator calls:\n" + "\n".join(
        map(str, denied))


@pytest.mark.e2e
def test_nothing_beyond_what_the_operator_uses_is_granted(recorded: Recorded) -> None:
    operator_requests = recorded.requests
    grants = operator_grants(recorded.values)
    for grant in grants:
        for rule in grant.rules:
            assert "*" not in (rule.get("apiGroups", []) + rule.get("resources", [])
                               + rule.get("verbs", [])), f"wildcard in {grant.source}: {rule}"
    unused = set()
    for grant in grants:
        scoped = [r for r in operator_requests
                  if grant.namespace is None or r.namespace == grant.namespace]
        unused |= set(unused_rules(grant.rules, scoped))
    unexplained = sorted(unused - set(NOT_EXERCISED))
    assert not unexplained, ("granted but never used by the operator (remove from the chart's "
                             f"rbac.yaml, or explain in NOT_EXERCISED): {unexplained}")
    stale = sorted(set(NOT_EXERCISED) - unused)
    assert not stale, f"used now, remove from NOT_EXERCISED: {stale}"
