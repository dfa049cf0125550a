"""The worker's mounted Secrets: reading the volume layout, refresh, views and errors."""

from __future__ import annotations

import os

import pytest

from conveyor_engine.compiler import compile_workflow
from conveyor_engine.tasktypes.base import Failed
from conveyor_engine.worker.execute import secrets_context
from conveyor_engine.worker.mounts import (
    MountedSecrets,
    SecretNotFound,
    SecretNotMounted,
    SecretsView,
    missing,
    split_short,
)

NOT_MOUNTED = ("secret {!r} is not mounted on this worker (mounted: {}); list it in the "
               "WorkerPool's spec.secrets (if it is listed, this worker's pod predates that: "
               "the attempt is retried under the task's retry policy)")


def write_atomic(root, secret: str, data: dict[str, str], version: int) -> None:
    """The layout Kubernetes' atomic writer makes: keys link through ``..data``."""
    base = root / secret
    base.mkdir(exist_ok=True)
    stamped = base / f"..2025_{version}"
    stamped.mkdir()
    for key, value in data.items():
        (stamped / key).write_text(value)
    tmp = base / "..data_tmp"
    tmp.symlink_to(stamped.name)
    os.replace(tmp, base / "..data")
    for key in data:
        if not (base / key).is_symlink():
            (base / key).symlink_to(f"..data/{key}")


def test_reads_the_volume_layout_and_rereads_a_changed_secret(tmp_path) -> None:
    now = [0.0]
    write_atomic(tmp_path, "payments", {"token": "first-token", "pin": "12"}, 1)
    mounted = MountedSecrets(tmp_path, refresh_seconds=5, clock=lambda: now[0])
    assert mounted.values == {"payments": {"token": "first-token"}}
    assert mounted.short == {("payments", "pin")}
    write_atomic(tmp_path, "payments", {"token": "second-token", "pin": "12"}, 2)
    assert mounted.view()["payments"]["token"] == "first-token"  # not due yet
    now[0] = 6
    assert mounted.view()["payments"]["token"] == "second-token"
    # The rotated-out value stays redacted: an attempt may still hold it.
    assert mounted.redactor.text("first-token second-token") == (
        "[redacted secret payments.token] [redacted secret payments.token]")


def test_an_empty_secret_directory_is_mounted_from_the_first_read(tmp_path) -> None:
    """An optional Secret that does not exist is mounted as an empty directory: it is
    mounted (and advertised) all the same, from the first read, and a later one counts."""
    now = [0.0]
    (tmp_path / "payments").mkdir()
    mounted = MountedSecrets(tmp_path, refresh_seconds=5, clock=lambda: now[0])
    assert mounted.names() == ["payments"]
    (tmp_path / "audit").mkdir()
    now[0] = 6
    assert mounted.names() == ["audit", "payments"]


def test_no_directory_means_no_secrets(tmp_path) -> None:
    assert MountedSecrets(None).values == {}
    assert MountedSecrets(tmp_path / "absent").values == {}


@pytest.mark.parametrize(("reads", "error", "expected"), [
    ({"payments": {"token": None}}, None, None),
    (None, None, None),
    ({"payments": None}, None, None),
    ({"other": {"token": None}}, SecretNotMounted, NOT_MOUNTED.format("other", "payments")),
    ({"payments": {"tokn": None}}, SecretNotFound,
     "secret 'payments' has no key 'tokn' (keys: token)"),
    ({"payments": {"pin": None}}, SecretNotFound, "secret 'payments' key 'pin' is shorter "
     "than 4 characters, too short to be redacted safely, so workers do not provide it"),
])
def test_missing_names_secret_and_key_never_a_value(reads, error, expected) -> None:
    values = {"payments": {"token": "the-token"}}
    found = missing(reads, values, frozenset({("payments", "pin")}))
    assert type(found) is (error or type(None))
    assert (None if found is None else str(found)) == expected


def test_split_short_withholds_values_too_short_to_redact() -> None:
    held, short = split_short({"p": {"token": "long-value", "pin": "abc", "pad": " abc\n"}})
    assert held == {"p": {"token": "long-value"}}
    assert short == {("p", "pin"), ("p", "pad")}


def test_view_errors_name_secret_and_key_and_repr_hides_values() -> None:
    view = SecretsView({"payments": {"token": "the-token"}})
    assert view["payments"]["token"] == "the-token"
    with pytest.raises(SecretNotFound, match="has no key 'x' \\(keys: token\\)"):
        view["payments"]["x"]
    with pytest.raises(SecretNotMounted, match="secret 'nope' is not mounted"):
        view["nope"]
    assert "the-token" not in repr(view) + repr(view["payments"])


def test_rendering_context_gets_secrets_only_when_read() -> None:
    wf = compile_workflow("w", {"tasks": [
        {"name": "a", "type": "set", "params": {"x": "${{ secrets.payments.token }}"}},
        {"name": "b", "type": "set", "params": {"x": "${{ inputs }}"}}]})
    values = {"payments": {"token": "the-token"}}
    assert secrets_context(wf.tasks["b"], {}, values) == {}
    ctx = secrets_context(wf.tasks["a"], {}, values)
    assert ctx == {"secrets": values}
    assert wf.tasks["a"].params.render(ctx) == {"x": "the-token"}
    assert secrets_context(wf.tasks["a"], {}, {}) == Failed(
        NOT_MOUNTED.format("payments", "none"), retryable=True, kind="SecretNotMounted",
        kinds=("RetryableError", "KeyError", "LookupError"))


def test_expressions_fail_like_the_sdk_for_a_missing_key_or_a_withheld_value() -> None:
    wf = compile_workflow("w", {"tasks": [
        {"name": "a", "type": "set", "params": {"x": "${{ secrets.short.pin }}"}}]})
    view = SecretsView(*split_short({"short": {"pin": "abc", "long": "long-value"}}))
    failed = secrets_context(wf.tasks["a"], {}, view)
    assert isinstance(failed, Failed)
    assert (failed.error, failed.retryable, failed.kind) == (
        "secret 'short' key 'pin' is shorter than 4 characters, too short to be redacted "
        "safely, so workers do not provide it", False, "SecretNotFound")


@pytest.mark.parametrize("spec", [
    {"locks": [{"name": "l-${{ secrets.payments.token }}"}]},
    {"rateLimit": {"key": "${{ secrets.payments.token }}"}},
])
def test_stored_names_may_not_use_secrets(spec) -> None:
    from conveyor_engine.compiler import WorkflowInvalid

    with pytest.raises(WorkflowInvalid, match="may not use secrets"):
        compile_workflow("w", {"tasks": [{"name": "a", "type": "set", "params": {}, **spec}]})


def test_concurrency_key_may_not_use_secrets() -> None:
    from conveyor_engine.compiler import WorkflowInvalid

    with pytest.raises(WorkflowInvalid, match=r"concurrency\.key.*may use only inputs.*secrets"):
        compile_workflow("w", {"concurrency": {"key": "secrets.payments.token"},
                               "tasks": [{"name": "a", "type": "set", "params": {}}]})
