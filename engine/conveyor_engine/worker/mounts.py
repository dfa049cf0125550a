"""The Secrets mounted into a worker: read from ``CONVEYOR_SECRETS_DIR``, re-read when the
files change, handed to tasks, and the redactor built from them.

The layout is the one a pod's secret volumes give (``<dir>/<secret>/<key>``, one file per
key; Kubernetes' atomic writer adds ``..data`` and ``..<timestamp>`` entries, skipped
here). Kubernetes updates mounted Secrets in place when they change (kubelet sync period,
about a minute), so the directory is looked at again at most every
``CONVEYOR_SECRETS_REFRESH_SECONDS`` and re-read when a file's identity changed.

Values are never logged: warnings name the Secret and key only. A value shorter than
:data:`~conveyor_engine.redaction.MIN_SECRET_CHARS` cannot be redacted safely, so it is not
provided (a task reading it fails, saying why: :func:`split_short`).

A Secret this worker does not mount raises :class:`SecretNotMounted`, which is retried under
the task's retry policy (a pool rolling out a new ``spec.secrets`` may hand the retry to a
pod that mounts it); a missing key of a mounted Secret, or a withheld short value, raises
:class:`SecretNotFound`, which is not (the same attempt would fail again).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from ..redaction import MIN_SECRET_CHARS, Redactor
from ..tasktypes.errors import NonRetryableError, RetryableError

log = logging.getLogger(__name__)

Values = dict[str, dict[str, str]]


class SecretNotFound(NonRetryableError, KeyError):
    """A task read a Secret or key this worker does not hold; the message names both and
    what is mounted, never a value. Not retryable: the same attempt would fail again."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


class SecretNotMounted(RetryableError, KeyError):
    """A task read a Secret this worker does not mount (kind ``SecretNotMounted``, which
    ``retryOn`` can name). Retried under the task's retry policy: while a pool rolls out a
    new ``spec.secrets``, the retry may run on a pod that mounts it. The message names the
    Secret and what is mounted, never a value."""

    def __str__(self) -> str:
        return self.args[0]


def not_found(secret: str, key: str | None, values: Mapping[str, Mapping[str, str]],
              short: frozenset[tuple[str, str]] = frozenset(),
              ) -> SecretNotMounted | SecretNotFound:
    """The error for reading ``secrets[secret][key]`` (``key`` None: the Secret itself)
    that ``values`` (name -> key -> value) lacks, ``short`` listing the ``(secret, key)``
    withheld as too short. Pure; the message names Secrets and keys only."""
    if secret not in values:
        mounted = ", ".join(sorted(values)) or "none"
        return SecretNotMounted(
            f"secret {secret!r} is not mounted on this worker (mounted: {mounted}); list it "
            f"in the WorkerPool's spec.secrets (if it is listed, this worker's pod predates "
            f"that: the attempt is retried under the task's retry policy)")
    if (secret, key) in short:
        return SecretNotFound(
            f"secret {secret!r} key {key!r} is shorter than {MIN_SECRET_CHARS} characters, "
            f"too short to be redacted safely, so workers do not provide it")
    keys = ", ".join(sorted(values[secret])) or "none"
    return SecretNotFound(f"secret {secret!r} has no key {key!r} (keys: {keys})")


def missing(reads: Any, values: Mapping[str, Mapping[str, str]],
            short: frozenset[tuple[str, str]] = frozenset(),
            ) -> SecretNotMounted | SecretNotFound | None:
    """The error (:func:`not_found`) for the first Secret or key that expressions with
    ``reads`` (the ``secrets`` branch of :data:`~conveyor_engine.expressions.reads.Reads`)
    select by name but ``values`` lacks; None when all are there. Pure."""
    if not isinstance(reads, Mapping):
        return None  # the whole of secrets (or a computed name): the runtime will say
    for secret in sorted(reads):
        if secret not in values:
            return not_found(secret, None, values, short)
        keys = reads[secret]
        if isinstance(keys, Mapping):
            for key in sorted(keys):
                if key not in values[secret]:
                    return not_found(secret, key, values, short)
    return None


def split_short(values: Mapping[str, Mapping[str, str]],
                ) -> tuple[Values, frozenset[tuple[str, str]]]:
    """``values`` (name -> key -> value) without the values too short to redact (under
    :data:`~conveyor_engine.redaction.MIN_SECRET_CHARS` once stripped), and the
    ``(secret, key)`` pairs left out. Pure: the worker's rule, used by the SDK's harness too."""
    short = frozenset((s, k) for s, keys in values.items() for k, v in keys.items()
                      if len(v.strip()) < MIN_SECRET_CHARS)
    held = {s: {k: v for k, v in keys.items() if (s, k) not in short}
            for s, keys in values.items()}
    return held, short


class _Keys(Mapping[str, str]):
    def __init__(self, secret: str, values: Mapping[str, Mapping[str, str]],
                 short: frozenset[tuple[str, str]]) -> None:
        self._secret, self._values, self._short = secret, values, short

    def __getitem__(self, key: str) -> str:
        found = self._values[self._secret].get(key)
        if found is None:
            raise not_found(self._secret, key, self._values, self._short)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(self._values[self._secret])

    def __len__(self) -> int:
        return len(self._values[self._secret])

    def __repr__(self) -> str:  # never the values
        return f"<secret {self._secret!r} keys {sorted(self._values[self._secret])}>"


class SecretsView(Mapping[str, Mapping[str, str]]):
    """``ctx.secrets``: Secret name -> key -> value. A Secret not mounted raises
    :class:`SecretNotMounted`, a missing key :class:`SecretNotFound` (naming a withheld
    short value as such: ``short``); ``repr`` shows names and keys, never values."""

    def __init__(self, values: Mapping[str, Mapping[str, str]],
                 short: frozenset[tuple[str, str]] = frozenset()) -> None:
        self._values, self._short = values, short

    @property
    def short(self) -> frozenset[tuple[str, str]]:
        """The ``(secret, key)`` pairs withheld as too short to redact."""
        return self._short

    def __getitem__(self, secret: str) -> Mapping[str, str]:
        if secret not in self._values:
            raise not_found(secret, None, self._values, self._short)
        return _Keys(secret, self._values, self._short)

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"<secrets {sorted(self._values)}>"


def _visible(path: Path) -> Iterator[Path]:
    # ``..data`` and ``..<timestamp>`` are the atomic writer's; dotfiles are no keys.
    for entry in sorted(path.iterdir()):
        if not entry.name.startswith("."):
            yield entry


class MountedSecrets:
    """The Secrets under ``directory`` (None or absent: none), looked at again at most
    every ``refresh_seconds`` (0: on every use).

    :attr:`values` and :attr:`short` describe what is held now; :attr:`redactor` covers
    every value held since start, so a value rotated out of a Secret stays redacted in what
    an attempt that read it still writes. ``clock`` is monotonic seconds.
    """

    def __init__(self, directory: str | Path | None, refresh_seconds: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._dir = Path(directory) if directory else None
        self._refresh = refresh_seconds
        self._clock = clock
        self._checked: float | None = None
        self._fingerprint: tuple | None = None  # None: never read
        self.values: Values = {}
        self.short: frozenset[tuple[str, str]] = frozenset()
        self._seen: set[tuple[str, str, str]] = set()
        self.redactor = Redactor()
        self.refresh()

    def view(self) -> SecretsView:
        """The current values as ``ctx.secrets`` (after a refresh if one is due)."""
        self.refresh()
        return SecretsView(self.values, self.short)

    def names(self) -> list[str]:
        """The names of the Secrets mounted now (after a refresh if one is due), sorted:
        what the worker advertises for its pool (:mod:`.advertise`)."""
        self.refresh()
        return sorted(self.values)

    def refresh(self) -> None:
        """Re-read the directory when due and changed; a read error keeps the last values
        (logged with the path, never a value)."""
        now = self._clock()
        if self._checked is not None and now - self._checked < self._refresh:
            return
        self._checked = now
        try:
            fingerprint = self._stat()
            if fingerprint == self._fingerprint:
                return
            values = self._read()
        except OSError as exc:
            log.warning("reading mounted secrets under %s failed: %s", self._dir, exc)
            return
        self._fingerprint = fingerprint
        self.values, self.short = split_short(values)
        for secret, key in sorted(self.short):
            log.warning("secret %r key %r is shorter than %d characters: too short to be "
                        "redacted safely, so it is not provided to tasks", secret, key,
                        MIN_SECRET_CHARS)
        held = {(s, k, v) for s, keys in self.values.items() for k, v in keys.items()}
        if not held <= self._seen:
            self._seen |= held
            self.redactor = Redactor(more=self._seen)
        log.info("mounted secrets: %s", ", ".join(
            f"{s} ({', '.join(sorted(k))})" for s, k in sorted(self.values.items())) or "none")

    def _secret_dirs(self) -> list[Path]:
        if self._dir is None or not self._dir.is_dir():
            return []
        return [d for d in _visible(self._dir) if d.is_dir()]

    def _stat(self) -> tuple:
        found: list[tuple] = []
        for secret in self._secret_dirs():
            # The directory itself counts: an optional Secret that does not exist is mounted
            # as an empty directory, and it is mounted all the same (and advertised).
            found.append((secret.name,))
            for key in _visible(secret):
                st = os.stat(key)  # follows the atomic writer's symlinks
                found.append((secret.name, key.name, st.st_ino, st.st_mtime_ns, st.st_size))
        return tuple(found)

    def _read(self) -> Values:
        values: Values = {}
        for secret in self._secret_dirs():
            keys = values.setdefault(secret.name, {})
            for key in _visible(secret):
                if key.is_file():
                    keys[key.name] = key.read_bytes().decode("utf-8", errors="replace")
        return values
