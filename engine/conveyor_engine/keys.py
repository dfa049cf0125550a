"""Every Redis key name Conveyor uses, in one place.

All keys start with the installation's prefix (``CONVEYOR_KEY_PREFIX``), so several
installations or test sessions can share one Redis server without seeing each other.

Keys that belong together carry a Redis Cluster hash tag (the part between ``{`` and ``}``,
which alone decides the key's slot; Redis Cluster specification, "Hash tags"): every key of
one pool shares the tag ``{<prefix>/pool/<name>}`` and every key of one execution the tag
``{<prefix>/exec/<id>}``. A pipeline, ``MULTI`` block or Lua script over one pool's keys (or
one execution's) therefore stays in one slot, as Redis Cluster requires. On a single Redis
server a tag is just part of the name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Keys:
    """Key names under one prefix. Pure string building; no I/O."""

    prefix: str

    def pool_tag(self, pool: str) -> str:
        """The hash tag shared by every key of ``pool`` (one slot in Redis Cluster)."""
        return f"{{{self.prefix}/pool/{pool}}}"

    def execution_tag(self, execution_id: str) -> str:
        """The hash tag shared by every key of one execution."""
        return f"{{{self.prefix}/exec/{execution_id}}}"

    def stream(self, pool: str, band: str = "normal") -> str:
        """The dispatch stream of a worker pool and priority band (Redis Streams, one
        consumer group each). The ``normal`` band keeps the name every pool's one stream
        had; ``high`` and ``low`` add a suffix (see :mod:`conveyor_engine.priorities`)."""
        base = f"{self.prefix}:{self.pool_tag(pool)}:tasks"
        return base if band == "normal" else f"{base}:{band}"

    def group(self, pool: str) -> str:
        """The consumer group name that a pool's workers share on its stream."""
        return f"pool-{pool}"

    def dead_letter(self, pool: str) -> str:
        """Stream of messages given up on after too many deliveries."""
        return f"{self.prefix}:{self.pool_tag(pool)}:dead"

    def workflow(self, content_hash: str) -> str:
        """Cached compiled workflow spec (JSON) by content hash."""
        return f"{self.prefix}:workflow:{content_hash}"

    def execution(self, execution_id: str) -> str:
        """Cached execution header (hash: workflow hash, inputs JSON, cancelled flag)."""
        return f"{self.prefix}:{self.execution_tag(execution_id)}"

    def outputs(self, execution_id: str) -> str:
        """Cached task outputs of one execution (hash: task name -> JSON)."""
        return f"{self.prefix}:{self.execution_tag(execution_id)}:outputs"

    def events(self) -> str:
        """Pub/sub channel of state changes (JSON batches)."""
        return f"{self.prefix}:events"

    def control(self) -> str:
        """Pub/sub channel telling workers to abort running tasks (cancellation)."""
        return f"{self.prefix}:control"

    def rate_limit(self, key: str) -> str:
        """The GCRA state (theoretical arrival time, microseconds) of rate-limit ``key``
        (:mod:`conveyor_engine.tokenbucket`); one key, so the script stays in one slot."""
        return f"{self.prefix}:ratelimit:{key}"

    def dispatcher_lock(self, pool: str) -> str:
        """Lock held by the one worker of a pool that runs the dispatcher loop."""
        return f"{self.prefix}:{self.pool_tag(pool)}:dispatcher"

    def catalogue_workers(self, pool: str) -> str:
        """Sorted set of the workers advertising task types for ``pool``: member the
        worker's consumer name, score the Unix time (seconds) its advertisement expires
        (:mod:`conveyor_engine.catalogue`)."""
        return f"{self.prefix}:{self.pool_tag(pool)}:catalogue:workers"

    def catalogue_worker(self, pool: str, worker: str) -> str:
        """One worker's advertised task types (JSON), expiring unless refreshed."""
        return f"{self.prefix}:{self.pool_tag(pool)}:catalogue:worker:{worker}"

    def catalogue_last(self, pool: str) -> str:
        """The pool's last known catalogue (JSON, no expiry): what the last worker that
        advertised had, kept so a pool scaled to zero still compiles against it."""
        return f"{self.prefix}:{self.pool_tag(pool)}:catalogue:last"
