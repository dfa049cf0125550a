"""The phase vocabulary: the enums, their final/open sets and the SQL schema agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conveyor_engine.phases import (
    EXECUTION_FINAL,
    EXECUTION_OPEN,
    SATISFIES_DEPENDENTS,
    TASK_FINAL,
    TASK_OPEN,
    AttemptOutcome,
    ExecutionPhase,
    TaskPhase,
    sql_list,
)

MIGRATIONS = Path(__file__).parents[2] / "engine/conveyor_engine/store/migrations"


def _checked_words(table: str, column: str) -> set[str]:
    """The words the migrations' ``CHECK (column IN (...))`` allows in ``table``: the last
    ``ALTER TABLE ... ADD CONSTRAINT`` replacing it, else the one in ``CREATE TABLE``."""
    sql = "\n".join(p.read_text() for p in sorted(MIGRATIONS.glob("*.sql")))
    replaced = re.findall(
        rf"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_check\s+"
        rf"CHECK \({column} IN \(([^)]*)\)\)", sql)
    if replaced:
        return set(re.findall(r"'(\w+)'", replaced[-1]))
    block = re.search(rf"CREATE TABLE {table} \((.*?)\n\);", sql, re.S)
    assert block, f"no CREATE TABLE {table} in the migrations"
    check = re.search(rf"{column}\s.*?CHECK \({column} IN \(([^)]*)\)\)", block.group(1), re.S)
    assert check, f"no CHECK on {table}.{column}"
    return set(re.findall(r"'(\w+)'", check.group(1)))


@pytest.mark.parametrize(("table", "column", "enum"), [
    ("executions", "phase", ExecutionPhase),
    ("tasks", "phase", TaskPhase),
    ("attempts", "outcome", AttemptOutcome),
])
def test_sql_check_constraints_list_exactly_the_enum(table: str, column: str, enum: type) -> None:
    assert _checked_words(table, column) == {str(member) for member in enum}


@pytest.mark.parametrize(("final", "open_", "enum"), [
    (TASK_FINAL, TASK_OPEN, TaskPhase),
    (EXECUTION_FINAL, EXECUTION_OPEN, ExecutionPhase),
])
def test_final_and_open_partition_the_phases(final: frozenset, open_: frozenset,
                                             enum: type) -> None:
    assert final | open_ == set(enum) and not final & open_


@pytest.mark.parametrize(("phase", "final", "satisfies"), [
    ("Pending", False, False), ("Ready", False, False), ("Running", False, False),
    ("Waiting", False, False), ("Succeeded", True, True), ("Failed", True, False),
    ("Skipped", True, True), ("Cancelled", True, False),
])
def test_task_phase_table(phase: str, final: bool, satisfies: bool) -> None:
    assert (TaskPhase(phase) in TASK_FINAL, phase in SATISFIES_DEPENDENTS) == (final, satisfies)


def test_members_are_the_plain_strings() -> None:
    assert TaskPhase.SUCCEEDED == "Succeeded" and f"{ExecutionPhase.RUNNING}" == "Running"
    assert sql_list(EXECUTION_OPEN) == ["Pending", "Running"]
