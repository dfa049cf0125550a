"""Versioned SQL migrations, applied in order under an advisory lock.

Files are ``migrations/NNNN_description.sql``; each runs once, in its own transaction, and
is recorded in ``conveyor_schema_migrations``. Concurrent starters (several workers and the
operator booting together) serialise on ``pg_advisory_xact_lock`` so each file runs once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import asyncpg

#: Arbitrary constant identifying Conveyor's migration lock among advisory locks.
_LOCK_ID = 0x434F4E56  # "CONV"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    """One SQL file: ``version`` from its 4-digit prefix, ``sql`` its whole text."""

    version: int
    name: str
    sql: str


def available() -> list[Migration]:
    """All migrations shipped with the package, ordered by version."""
    found = []
    for entry in resources.files(__package__).joinpath("migrations").iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply every migration not yet recorded; return the versions applied now.

    Raises asyncpg errors unchanged when a migration fails; its transaction is rolled back,
    so the schema is never half-migrated.
    """
    applied_now = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _LOCK_ID)
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS conveyor_schema_migrations (
                   version integer PRIMARY KEY,
                   name text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["version"] for r in await conn.fetch(
            "SELECT version FROM conveyor_schema_migrations")}
        for migration in available():
            if migration.version in done:
                continue
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO conveyor_schema_migrations (version, name) VALUES ($1, $2)",
                migration.version, migration.name,
            )
            applied_now.append(migration.version)
    return applied_now
