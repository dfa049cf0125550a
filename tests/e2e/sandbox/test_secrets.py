"""A pool's Secret used in an http header reaches the server and appears nowhere else.

The pool mounts Secret ``payments`` (created with ``kubectl create secret generic``); a
Workflow sends ``Authorization: Bearer ${{ secrets.payments.token }}`` to a loopback server
that echoes the request's headers, and a ``set`` task puts the token in its outputs on
purpose. The server must receive the token; the Execution's status, the Events, every log
file of the sandbox's processes, every PostgreSQL row and every Redis key of the sandbox
must not hold it in any redacted form (issue 11 item 4).
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import asyncpg
import pytest
from redis.asyncio import Redis

from conveyor_sandbox.sandbox import Sandbox
from tests.e2e.kubectl import Kubectl
from tests.support.manifests import manifest
from tests.support.polling import eventually

pytestmark = pytest.mark.e2e
MARKER = "[redacted secret payments.token]"


@contextlib.contextmanager
def echo_server() -> Iterator[tuple[str, list[dict[str, str]]]]:
    """A loopback server answering every GET with ``{"headers": {...}}`` of the request, as
    httpbin's ``/headers`` does; yields its URL and the headers of each request seen."""
    seen: list[dict[str, str]] = []

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            headers = dict(self.headers.items())
            seen.append(headers)
            body = json.dumps({"headers": headers}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def leaks(text: str, token: str) -> list[str]:
    """The forms of ``token`` found in ``text``: as is, base64, or its base64 core."""
    encoded = base64.b64encode(token.encode()).decode()
    return [form for form in (token, encoded[:-4], token[4:-4]) if form in text]


async def database_text(url: str) -> str:
    """Every row of every table of the sandbox's database, as text."""
    connection = await asyncpg.connect(url)
    try:
        tables = await connection.fetch(
            "SELECT schemaname, tablename FROM pg_tables WHERE schemaname NOT IN "
            "('pg_catalog', 'information_schema')")
        assert tables
        rows = []
        for table in tables:
            name = f'"{table["schemaname"]}"."{table["tablename"]}"'
            rows += [r[0] for r in await connection.fetch(f"SELECT t::text FROM {name} t")]
        return "\n".join(rows)
    finally:
        await connection.close()


async def redis_text(url: str, prefix: str) -> str:
    """Every key of the sandbox's prefix and its whole value (strings, hashes, lists, sets,
    sorted sets, streams), as text."""
    redis = Redis.from_url(url)
    parts = []
    try:
        async for key in redis.scan_iter(match=f"{prefix}*", count=500):
            kind = (await redis.type(key)).decode()
            value = {"string": lambda k: redis.get(k), "hash": lambda k: redis.hgetall(k),
                     "list": lambda k: redis.lrange(k, 0, -1),
                     "set": lambda k: redis.smembers(k),
                     "zset": lambda k: redis.zrange(k, 0, -1, withscores=True),
                     "stream": lambda k: redis.xrange(k)}.get(kind)
            parts.append(f"{key!r} {kind} {await value(key) if value else ''!r}")
    finally:
        await redis.aclose()
    assert parts
    return "\n".join(parts)


async def test_a_secret_in_a_header_reaches_the_server_and_nowhere_else(
    sandbox: Sandbox, kubectl: Kubectl
) -> None:
    token = "tok-" + secrets.token_urlsafe(24)
    with echo_server() as (url, seen):
        await kubectl.run("apply", "-f", "-", stdin=manifest(f"""
            apiVersion: conveyor.dev/v1alpha1
            kind: WorkerPool
            metadata: {{name: secretive}}
            spec: {{minReplicas: 1, maxReplicas: 1, concurrency: 4, shutdownGraceSeconds: 5,
                    secrets: [{{name: payments}}]}}
            ---
            apiVersion: conveyor.dev/v1alpha1
            kind: Workflow
            metadata: {{name: pay}}
            spec:
              pool: secretive
              tasks:
                - name: call
                  type: http
                  params:
                    url: "{url}/headers"
                    headers: {{Authorization: "Bearer ${{{{ secrets.payments.token }}}}"}}
                - {{name: echo, type: set,
                   params: {{copy: "token=${{{{ secrets.payments.token }}}}"}}}}
                - {{name: missing, type: set, dependsOn: [call, echo],
                   params: {{x: "${{{{ secrets.payments.nokey }}}}"}}}}
        """))
        deployment = await eventually(lambda: sandbox.deployment("secretive"),
                                      what="the secretive pool's Deployment")
        namespace = deployment["metadata"]["namespace"]

        async def waiting_reason() -> str | None:
            pods = await sandbox.list_pods({"conveyor.dev/pool": "secretive"})
            for pod in pods:
                for status in pod.get("status", {}).get("containerStatuses", []):
                    waiting = status.get("state", {}).get("waiting") or {}
                    return f"{waiting.get('reason')}: {waiting.get('message')}"
            return None

        # The Secret does not exist yet: the pod waits, visibly, as a kubelet's would.
        assert await eventually(waiting_reason, what="the pod waiting for its Secret") == (
            'CreateContainerConfigError: secret "payments" not found')
        await kubectl.run("create", "secret", "generic", "payments", "-n", namespace,
                          f"--from-literal=token={token}", "--from-literal=user=api-user")
        await kubectl.run("apply", "-f", "-", stdin=manifest("""
            apiVersion: conveyor.dev/v1alpha1
            kind: Execution
            metadata: {name: pay-run}
            spec: {workflowRef: {name: pay}}
        """))
        done = (await sandbox.wait_finished([("default", "pay-run")], timeout=90))[0]
    tasks = {t["name"]: t for t in done["status"]["tasks"]}
    assert tasks["call"]["phase"] == "Succeeded" and tasks["echo"]["phase"] == "Succeeded"
    # The server received the secret.
    assert [h.get("Authorization") for h in seen] == [f"Bearer {token}"]
    # A key the Secret lacks fails clearly, naming secret and key (the keys, not values).
    assert tasks["missing"]["phase"] == "Failed"
    assert "secret 'payments' has no key 'nokey' (keys: token, user)" in tasks["missing"][
        "message"]

    status = (await kubectl.run("get", "executions", "-A", "-o", "json")).output
    events = (await kubectl.run("get", "events", "-A", "-o", "json")).output
    logs = "\n".join(p.read_text(errors="replace")
                     for p in sandbox.config.workdir.glob("*.log"))
    assert "serving pool 'secretive'" in logs
    database = await database_text(sandbox.database_url)
    stored = await redis_text(sandbox.redis_url, sandbox.key_prefix)
    # The echoed header and the set task's copy were stored, redacted.
    assert MARKER in database and MARKER in stored
    assert f"token={MARKER}" in database
    for where, text in [("status", status), ("events", events), ("logs", logs),
                        ("postgresql", database), ("redis", stored)]:
        assert leaks(text, token) == [], f"the secret leaked into {where}"
