"""A container's restarts and status as a kubelet reports them, for the sandbox's kubelet
emulation (pure).

Kubernetes' own values and rules:

* restart back-off ("Pod Lifecycle", *Container restarts*): "After containers in a Pod
  exit, the kubelet restarts them with an exponential backoff delay (10s, 20s, 40s, …),
  that is capped at 300 seconds (5 minutes). Once a container has executed for 10 minutes
  without any problems, the kubelet resets the restart backoff timer for that container."
  While it waits, the container's state is ``waiting`` with reason ``CrashLoopBackOff`` and
  the kubelet's message ``back-off 20s restarting failed container=<c> pod=<pod>_<ns>(<uid>)``.
* the termination message (core/v1 ``Container.terminationMessagePolicy``
  ``FallbackToLogsOnError``): when the container failed and wrote no message file, "the
  last chunk of container log output" is used, "limited to 2048 bytes or 80 lines,
  whichever is smaller".
* ``lastState.terminated.reason`` is ``Error`` for a non-zero exit code, ``Completed`` for 0.
* ``restartCount`` counts the restarts: it grows when the container is started again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

#: ``FallbackToLogsOnError``'s bounds of a termination message taken from the log.
MESSAGE_BYTES = 2048
MESSAGE_LINES = 80


@dataclass(frozen=True, slots=True)
class CrashLoopBackOff:
    """The kubelet's restart back-off, in seconds: ``initial`` doubling per crash in a row up
    to ``cap``; a container that ran ``reset_after`` seconds or more starts over at
    ``initial``. Defaults are Kubernetes' (10 s, 300 s, 10 min); the sandbox's kubelet takes
    another policy as a setting (tests use a short one)."""

    initial: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0

    def __post_init__(self) -> None:
        if not 0 < self.initial <= self.cap or self.reset_after <= 0:
            raise ValueError(f"invalid back-off: initial {self.initial}s, cap {self.cap}s, "
                             f"reset after {self.reset_after}s (need 0 < initial <= cap, "
                             f"reset > 0)")

    def crashes_in_a_row(self, before: int, ran_for: float) -> int:
        """The crash count after one more crash of a container that ran ``ran_for``
        seconds, ``before`` crashes in a row preceding it (a long run starts over at 1)."""
        return 1 if ran_for >= self.reset_after else before + 1

    def delay(self, crashes: int) -> float:
        """Seconds before the restart that follows the ``crashes``-th crash in a row (>= 1):
        ``initial * 2 ** (crashes - 1)``, at most ``cap``."""
        if crashes < 1:
            raise ValueError(f"crashes must be at least 1, not {crashes}")
        # Past ~60 doublings any sane cap is reached; avoids huge powers.
        return min(self.initial * 2.0 ** min(crashes - 1, 60), self.cap)


def termination_message(output: bytes) -> str:
    """The end of a failed container's ``output`` as ``FallbackToLogsOnError`` keeps it: the
    last :data:`MESSAGE_LINES` lines, then at most the last :data:`MESSAGE_BYTES` bytes of
    those (cut at a character boundary), trailing blank space removed."""
    lines = output.rstrip().splitlines()[-MESSAGE_LINES:]
    tail = b"\n".join(lines)[-MESSAGE_BYTES:]
    return tail.decode("utf-8", errors="ignore").strip()


def back_off_message(delay: float, container: str, pod: str, namespace: str,
                     uid: str) -> str:
    """The kubelet's ``CrashLoopBackOff`` message for a restart ``delay`` seconds away."""
    return (f"back-off {delay:g}s restarting failed container={container} "
            f"pod={pod}_{namespace}({uid})")


def terminated(exit_code: int, message: str, started_at: str, finished_at: str
               ) -> dict[str, Any]:
    """A ``state.terminated`` / ``lastState.terminated`` of a container that exited with
    ``exit_code`` (negative: killed by that signal, reported as 128 + signal as a runtime
    does); times in RFC 3339."""
    code = 128 - exit_code if exit_code < 0 else exit_code
    found: dict[str, Any] = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                             "startedAt": started_at, "finishedAt": finished_at}
    if code != 0 and message:
        found["message"] = message
    return found


@dataclass(frozen=True, slots=True)
class ContainerView:
    """What the kubelet knows of a pod's one container.

    ``running_since`` (RFC 3339) is set while a process runs; ``waiting`` is
    ``(reason, message)`` while none does (``CrashLoopBackOff``,
    ``CreateContainerConfigError``); ``last_terminated`` is the last exit
    (:func:`terminated`); ``ready_since`` (RFC 3339) when readiness last changed.
    """

    name: str
    image: str
    ready: bool
    restarts: int
    running_since: str | None = None
    waiting: tuple[str, str] | None = None
    last_terminated: dict[str, Any] | None = None
    ready_since: str | None = None
    ever_started: bool = False


def pod_status(view: ContainerView) -> dict[str, Any]:
    """The Pod's ``status`` (phase, conditions, containerStatuses) for its one container.

    ``phase`` is ``Running`` once the container was started (a crash-looping container
    keeps its pod ``Running``: ``restartPolicy: Always``), ``Pending`` before that;
    ``Ready`` and ``ContainersReady`` follow the container's readiness, with
    ``ready_since`` as their transition time; ``started`` is True while it runs (there is
    no startup probe). Every field core/v1 ``ContainerStatus`` requires is set.
    """
    state: dict[str, Any]
    if view.running_since is not None:
        state = {"running": {"startedAt": view.running_since}}
    elif view.waiting is not None:
        state = {"waiting": {"reason": view.waiting[0], "message": view.waiting[1]}}
    else:
        state = {"waiting": {"reason": "ContainerCreating"}}
    # ``imageID`` is required (clients refuse a status without it); no image is pulled
    # here, so it is empty, as a real kubelet reports a container not created yet.
    container: dict[str, Any] = {
        "name": view.name, "image": view.image, "imageID": "", "ready": view.ready,
        "started": view.running_since is not None, "restartCount": view.restarts,
        "state": state, "lastState": ({"terminated": view.last_terminated}
                                      if view.last_terminated else {})}
    ready = "True" if view.ready else "False"
    conditions = [{"type": kind, "status": ready, "lastTransitionTime": view.ready_since}
                  for kind in ("Ready", "ContainersReady")]
    return {"phase": "Running" if view.ever_started else "Pending",
            "conditions": conditions, "containerStatuses": [container]}
