"""Why a pool's workers do not run, from its pods' container statuses (pure), as a table:
the reason and message the WorkerPool's ``Degraded`` condition shows."""

from __future__ import annotations

from typing import Any

import pytest

from conveyor_operator.status.pods import MAX_OUTPUT, last_output_line, pod_trouble

BROKEN = ("2026-03-01 12:00:00,123 ERROR conveyor_engine.cli: cannot start: a task type "
          "failed to load: entry point 'acme.broken = acme.tasks:broken': No module named "
          "'acme'")


def pod(name: str, reason: str | None = None, message: str = "", *,
        last: dict[str, Any] | None = None, image: str = "conveyor:1") -> dict[str, Any]:
    waiting = None if reason is None else {"reason": reason, "message": message}
    return {"name": name, "containers": [{"name": "worker", "image": image,
                                          "waiting": waiting, "last_terminated": last}]}


CRASH = {"exitCode": 2, "reason": "Error", "message": f"some line\n{BROKEN}\n"}


@pytest.mark.parametrize(("pods", "expected"), [
    pytest.param([], None, id="no-pods"),
    pytest.param([pod("a"), pod("b", "ContainerCreating")], None, id="starting-is-no-cause"),
    pytest.param([pod("a", "CrashLoopBackOff", "back-off 20s restarting failed", last=CRASH)],
                 ("CrashLoopBackOff", "pod a: exit code 2: cannot start: a task type failed "
                  "to load: entry point 'acme.broken = acme.tasks:broken': No module named "
                  "'acme'"), id="crash-loop-names-exit-code-and-last-line"),
    pytest.param([pod("a", "CrashLoopBackOff", last={"exitCode": 137, "reason": "Error"})],
                 ("CrashLoopBackOff", "pod a: exit code 137"), id="crash-without-output"),
    pytest.param([pod("a", "CrashLoopBackOff", "back-off 10s")],
                 ("CrashLoopBackOff", "pod a: container worker keeps exiting"),
                 id="crash-loop-without-last-state"),
    pytest.param([pod("a", "CreateContainerConfigError", 'secret "paymnets" not found')],
                 ("CreateContainerConfigError", 'pod a: secret "paymnets" not found'),
                 id="missing-secret"),
    pytest.param([pod("a", "ImagePullBackOff", 'Back-off pulling image "acme/w:9"',
                      image="acme/w:9")],
                 ("ImagePullBackOff", 'pod a: image "acme/w:9": Back-off pulling image '
                  '"acme/w:9"'), id="image-pull-back-off"),
    pytest.param([pod("a", "ErrImagePull", "", image="acme/w:9")],
                 ("ErrImagePull", 'pod a: image "acme/w:9"'), id="err-image-pull"),
    pytest.param([pod("b", "CrashLoopBackOff", last=CRASH),
                  pod("c", "CreateContainerConfigError", 'secret "x" not found'),
                  pod("a", "CrashLoopBackOff", last=CRASH)],
                 ("CreateContainerConfigError",
                  'pod c: secret "x" not found (and 2 other pod(s) not running)'),
                 id="the-most-telling-cause-first-then-by-name"),
    pytest.param([pod("b", "CrashLoopBackOff", last=CRASH),
                  pod("a", "CrashLoopBackOff", last=CRASH), pod("z")],
                 ("CrashLoopBackOff", "pod a: exit code 2: cannot start: a task type failed "
                  "to load: entry point 'acme.broken = acme.tasks:broken': No module named "
                  "'acme' (and 1 other pod(s) not running)"), id="same-cause-by-pod-name"),
])
def test_pod_trouble(pods: list[dict[str, Any]], expected: tuple[str, str] | None) -> None:
    found = pod_trouble(pods)
    assert (None if found is None else (str(found.reason), found.message)) == expected


@pytest.mark.parametrize(("output", "expected"), [
    ("", ""),
    ("\n\n  \n", ""),
    ("one\ntwo\n\n", "two"),
    (BROKEN, BROKEN.split("conveyor_engine.cli: ", 1)[1]),
    ("2026-03-01T12:00:00Z WARNING x.y: z", "z"),
    ("Invalid setting CONVEYOR_CONCURRENCY: 0 is too small", "Invalid setting "
     "CONVEYOR_CONCURRENCY: 0 is too small"),
    ("x" * (MAX_OUTPUT + 10), "x" * (MAX_OUTPUT - 3) + "..."),
])
def test_last_output_line(output: str, expected: str) -> None:
    assert last_output_line(output) == expected
