"""The retry policy's decisions as tables: backoff with jitter, Retry-After, retryOn (issue 9)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from conveyor_engine import progress
from conveyor_engine.compiler import compile_workflow
from conveyor_engine.model import RetryPolicy
from conveyor_engine.phases import AttemptOutcome, TaskPhase
from conveyor_engine.progress import LostAttempt, transition_for
from conveyor_engine.retries import (
    WORKER_LOST,
    backoff_ceiling,
    jittered,
    parse_retry_after,
    retry_delay,
    retry_on_matches,
    retry_on_problem,
)
from conveyor_engine.store import TaskRef
from conveyor_engine.tasktypes.base import Failed
from conveyor_engine.worker.outcome import outcome_record
from conveyor_sandbox.apiserver.validation import validate_value

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
S = timedelta(seconds=1)


def fixed(value: float):
    """A random source that always returns ``value``."""
    return lambda: value


# -- backoff: the ceiling, then jitter --------------------------------------------------------

@pytest.mark.parametrize(("base", "factor", "cap", "n", "expected"), [
    (1, 2, 10, 1, 1), (1, 2, 10, 2, 2), (1, 2, 10, 4, 8), (1, 2, 10, 5, 10),
    (1, 2, 10, 10_000, 10),  # no float overflow
    (0.5, 1.5, 60, 3, 1.125), (2, 1, 60, 50, 2), (60, 2, 30, 1, 30), (0, 2, 30, 7, 0),
])
def test_backoff_ceiling(base: float, factor: float, cap: float, n: int,
                         expected: float) -> None:
    assert backoff_ceiling(base * S, factor, cap * S, n) == expected * S


def test_backoff_ceiling_is_one_based() -> None:
    with pytest.raises(ValueError, match="1-based"):
        backoff_ceiling(S, 2, 10 * S, 0)


@pytest.mark.parametrize(("jitter", "rand", "expected"), [
    ("None", 0.0, 8),      # no jitter: exactly the ceiling, whatever the random source
    ("None", 0.99, 8),
    ("Full", 0.0, 0),      # full jitter: uniform in [0, ceiling)
    ("Full", 0.25, 2),
    ("Full", 0.5, 4),
    ("Full", 0.999, 7.992),
])
def test_jitter(jitter: str, rand: float, expected: float) -> None:
    assert jittered(8 * S, jitter, fixed(rand)) == expected * S


@pytest.mark.parametrize(("jitter", "rand", "error"), [
    ("Equal", 0.5, "jitter: 'Equal' is not one of Full, None"),
    ("Full", 1.0, r"rand\(\) returned 1.0"),
    ("Full", -0.1, r"rand\(\) returned -0.1"),
])
def test_jitter_refuses(jitter: str, rand: float, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        jittered(8 * S, jitter, fixed(rand))


@pytest.mark.parametrize(("wait", "retry_after", "cap", "expected"), [
    (3, None, 60, 3),    # no Retry-After: the backoff
    (3, 10, 60, 10),     # Retry-After longer: at least what the server asked
    (3, 1, 60, 3),       # Retry-After shorter: the backoff still applies
    (3, 3600, 60, 60),   # a server cannot park a task past maxBackoff
    (0, 0, 60, 0),
    (0.5, -5, 60, 0.5),  # negative never shortens anything
])
def test_retry_delay(wait: float, retry_after: float | None, cap: float,
                     expected: float) -> None:
    assert retry_delay(wait * S, retry_after, cap * S) == expected * S


@pytest.mark.parametrize(("value", "expected"), [
    ("2", 2.0), (" 120 ", 120.0), ("0", 0.0),
    ("Fri, 02 Jan 2026 03:04:35 GMT", 30.0),        # IMF-fixdate, 30 s ahead
    ("Friday, 02-Jan-26 03:05:05 GMT", 60.0),       # obsolete RFC 850 form
    ("Fri Jan  2 03:04:15 2026", 10.0),             # obsolete asctime form (GMT)
    ("Thu, 01 Jan 2026 00:00:00 GMT", 0.0),         # in the past: no wait
    (None, None), ("", None), ("-1", None), ("1.5", None), ("soon", None),
    ("٣", None),  # a non-ASCII digit is not DIGIT (RFC 5234)
])
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_compiled_task_retry_delay_combines_backoff_jitter_and_retry_after() -> None:
    wf = compile_workflow("w", {"tasks": [{"name": "a", "type": "set", "retry": {
        "limit": 5, "backoff": "1s", "factor": 2, "maxBackoff": "10s"}}]})
    task = wf.tasks["a"]
    assert task.spec.retry.jitter == "Full"  # the default
    assert task.retry_delay(3, rand=fixed(0.5)) == 2 * S
    assert task.retry_delay(3, rand=fixed(0.5), retry_after=5) == 5 * S
    assert task.retry_delay(3, rand=fixed(0.5), retry_after=99) == 10 * S


# -- retryOn ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("retry_on", "kind", "status", "expected"), [
    (None, None, None, True),                 # absent: every retryable failure
    (None, "Timeout", None, True),
    (None, WORKER_LOST, None, True),
    (["5xx"], None, 503, True),
    (["5xx"], None, 500, True),
    (["5xx"], None, 429, False),
    (["429"], None, 429, True),
    (["429"], None, 500, False),              # a 500 is not retried when only 429 is
    (["408", "429"], None, 408, True),
    (["4xx"], None, 429, True),
    (["5xx"], "Timeout", None, False),
    (["Timeout"], "Timeout", None, True),
    (["Timeout"], None, 408, False),          # 408 is a status, matched as "408"/"4xx"
    (["WorkerLost"], WORKER_LOST, None, True),
    (["5xx"], WORKER_LOST, None, False),
    (["ConnectError"], "ConnectError", None, True),
    (["ConnectError"], "ReadError", None, False),
    (["5xx"], None, None, False),             # no kind, no status: matches nothing listed
    ([], None, 503, False),                   # an empty list retries nothing
])
def test_retry_on_matches(retry_on: list[str] | None, kind: str | None,
                          status: int | None, expected: bool) -> None:
    assert retry_on_matches(retry_on, kind=kind, status_code=status) is expected


@pytest.mark.parametrize(("entry", "problem"), [
    ("5xx", None), ("1xx", None), ("429", None), ("599", None), ("Timeout", None),
    ("WorkerLost", None), ("ConnectError", None), ("requests.ConnectionError", None),
    ("6xx", "is not an HTTP status"), ("600", "is not an HTTP status"),
    ("42", "is not an HTTP status"), ("5XX", "is not an HTTP status"),
    (429, "is not a string; write status codes quoted"),
    ("bad name", "is not a status class"), ("", "is not a status class"),
    ("a" * 129, "is not a status class"),
])
def test_retry_on_entries(entry: object, problem: str | None) -> None:
    found = retry_on_problem(entry)
    assert (found is None) if problem is None else (problem in (found or ""))


def test_retry_policy_validates_retry_on_and_jitter() -> None:
    policy = RetryPolicy.model_validate({"retryOn": ["5xx", "429", "Timeout"], "jitter": "None"})
    assert (policy.retry_on, policy.jitter) == (["5xx", "429", "Timeout"], "None")
    assert RetryPolicy().retry_on is None and RetryPolicy().jitter == "Full"
    with pytest.raises(ValidationError, match=r"retryOn\[1\]: '6xx' is not an HTTP status"):
        RetryPolicy.model_validate({"retryOn": ["5xx", "6xx"]})
    with pytest.raises(ValidationError, match="jitter"):
        RetryPolicy.model_validate({"jitter": "Decorrelated"})


def test_worker_lost_is_the_progress_reason() -> None:
    assert WORKER_LOST == progress.WORKER_LOST


# -- transitions and outcome records under retryOn and Retry-After ----------------------------

@pytest.mark.parametrize(("outcome", "retry_on", "phase", "message"), [
    (Failed("HTTP 503", status_code=503), ["5xx"], TaskPhase.WAITING, "retry 1 of 3"),
    (Failed("HTTP 500", status_code=500), ["429"], TaskPhase.FAILED, "(not in retryOn)"),
    (Failed("HTTP 404", retryable=False, status_code=404), ["4xx"], TaskPhase.FAILED,
     "(not retryable)"),  # retryOn only narrows: a wrong request is never retried
    (Failed("timeout", kind="Timeout"), ["Timeout"], TaskPhase.WAITING, "retry 1 of 3"),
    (Failed("timeout", kind="Timeout"), ["5xx"], TaskPhase.FAILED, "(not in retryOn)"),
    (Failed("boom", kind="ValueError"), None, TaskPhase.WAITING, "retry 1 of 3"),
    (LostAttempt("gone"), ["WorkerLost"], TaskPhase.WAITING, "lost, retry 1 of 3"),
    (LostAttempt("gone"), ["5xx"], TaskPhase.FAILED, "the last lost"),
])
def test_transition_under_retry_on(outcome: Any, retry_on: list[str] | None,
                                   phase: TaskPhase, message: str) -> None:
    t = transition_for(retry_limit=3, backoff_seconds=2, attempt=1, outcome=outcome,
                       now=NOW, retry_on=retry_on)
    assert t.phase == phase
    assert message in (t.message or "")
    if phase == TaskPhase.WAITING:
        assert t.due_at == NOW + 2 * S
    if isinstance(outcome, LostAttempt):
        assert t.attempt_outcome == AttemptOutcome.LOST


WORKFLOW = compile_workflow("w", {"tasks": [
    {"name": "full", "type": "set", "retry": {"limit": 3, "backoff": "4s", "maxBackoff": "30s"}},
    {"name": "fixed", "type": "set", "retry": {"limit": 3, "backoff": "4s", "maxBackoff": "30s",
                                               "jitter": "None"}},
    {"name": "only429", "type": "set", "retry": {"limit": 3, "retryOn": ["429"]}},
]})


@pytest.mark.parametrize(("task", "attempt", "outcome", "rand", "phase", "due"), [
    ("full", 1, Failed("x"), 0.5, TaskPhase.WAITING, 2),      # 4s ceiling, jittered to 2s
    ("full", 2, Failed("x"), 0.5, TaskPhase.WAITING, 4),      # 8s ceiling
    ("full", 2, Failed("x"), 0.0, TaskPhase.WAITING, 0),
    ("fixed", 2, Failed("x"), 0.0, TaskPhase.WAITING, 8),     # no jitter
    ("full", 1, Failed("x", status_code=503, retry_after=10), 0.5, TaskPhase.WAITING, 10),
    ("full", 1, Failed("x", status_code=503, retry_after=1e6), 0.5, TaskPhase.WAITING, 30),
    ("fixed", 1, Failed("x", status_code=429, retry_after=1), 0.5, TaskPhase.WAITING, 4),
    ("only429", 1, Failed("x", status_code=429), 0.5, TaskPhase.WAITING, 0.5),
    ("only429", 1, Failed("x", status_code=500), 0.5, TaskPhase.FAILED, None),
    ("only429", 1, LostAttempt("gone"), 0.5, TaskPhase.FAILED, None),
])
def test_outcome_record_applies_the_policy(task: str, attempt: int, outcome: Any, rand: float,
                                           phase: TaskPhase, due: float | None) -> None:
    record = outcome_record(TaskRef("e", task, attempt), outcome, worker="w1", started=NOW,
                            finished=NOW, workflow=WORKFLOW, task=WORKFLOW.tasks[task],
                            rand=fixed(rand))
    assert record.transition.phase == phase
    assert record.transition.due_at == (None if due is None else NOW + due * S)


# -- the CRD agrees with the model ------------------------------------------------------------

def _crd_retry_schema() -> dict[str, Any]:
    crd = yaml.safe_load((ROOT / "crds" / "workflows.conveyor.dev.yaml").read_text())
    (version,) = crd["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["properties"]["tasks"]["items"]["properties"]["retry"]


@pytest.mark.parametrize("retry", [
    {"retryOn": ["5xx", "429", "Timeout", "WorkerLost", "ConnectError", "a.B_c"]},
    {"retryOn": []},
    {"jitter": "Full"}, {"jitter": "None"},
    {"retryOn": ["6xx"]}, {"retryOn": ["600"]}, {"retryOn": ["42"]}, {"retryOn": ["5XX"]},
    {"retryOn": ["two words"]}, {"retryOn": [""]}, {"retryOn": ["x" * 129]},
    {"retryOn": [429]}, {"retryOn": [str(code) for code in range(500, 565)]},  # 65 > 64
    {"jitter": "Decorrelated"},
])
def test_the_crd_accepts_what_the_model_accepts(retry: dict[str, Any]) -> None:
    """The API server (the sandbox's, which validates as apiextensions-apiserver does) and
    the engine refuse the same retry policies, so a Workflow is not accepted by one and
    refused by the other. (A ``null`` is dropped by the API server before validation, so
    the engine never sees one from a Workflow.)"""
    try:
        RetryPolicy.model_validate(retry)
        model_ok = True
    except ValidationError:
        model_ok = False
    crd_ok = not validate_value(retry, _crd_retry_schema(), "spec.tasks[0].retry")
    assert crd_ok == model_ok, (retry, model_ok, crd_ok)


def test_default_jitter_and_retry_on_keep_the_content_hash() -> None:
    """A spec that sets neither field hashes as before they existed (no new version after
    an upgrade); setting either to something else is a new version."""
    task = {"name": "a", "type": "set", "retry": {"limit": 1}}

    def digest(**retry: Any) -> str:
        spec = {"tasks": [{**task, "retry": {**task["retry"], **retry}}]}
        return compile_workflow("w", spec).content_hash

    stored = compile_workflow("w", {"tasks": [task]}).to_json()
    assert '"jitter"' not in stored and '"retryOn"' not in stored
    assert digest() == digest(jitter="Full")
    assert len({digest(), digest(jitter="None"), digest(retryOn=["5xx"])}) == 3
    loaded = compile_workflow("w", {"tasks": [task]})
    assert loaded.tasks["a"].spec.retry.jitter == "Full"
