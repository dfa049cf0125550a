"""Workflow-wide checks of locks and rate limits (pure): one limit per literal lock name,
declarations that agree, and a literal ``rateLimit`` taking no more units than its
limit's burst (:mod:`conveyor_engine.locks`, :mod:`conveyor_engine.ratelimits`)."""

from __future__ import annotations

from collections.abc import Mapping

from .. import ratelimits
from ..expressions import OPEN
from ..model import TaskSpec, WorkflowSpec
from .problems import Problem


def limit_problems(spec: WorkflowSpec, tasks: Mapping[str, TaskSpec]) -> list[Problem]:
    """Problems of ``spec``'s rate-limit declarations and of its ``tasks``' (by name)
    lock limits and rate-limit units."""
    problems = [Problem(None, f"rateLimits[{i}]", message)
                for i, message in ratelimits.declaration_problems(spec.rate_limits)]
    limits: dict[str, tuple[str, int, int]] = {}
    for task in tasks.values():
        for i, lock in enumerate(task.locks):
            if OPEN in lock.name:
                continue
            first = limits.setdefault(lock.name, (task.name, i, lock.limit))
            if first[2] != lock.limit:
                problems.append(Problem(
                    task.name, f"locks[{i}].limit",
                    f'lock "{lock.name}" has limit {lock.limit} here but {first[2]} in task '
                    f'"{first[0]}" (locks[{first[1]}]); use one limit per lock'))
    declared = {rate.key: rate for rate in spec.rate_limits}
    for task in tasks.values():
        use = task.rate_limit
        if use is None or use.key not in declared:
            continue
        burst = ratelimits.rate_of(declared[use.key]).burst
        if use.units > burst:
            problems.append(Problem(
                task.name, "rateLimit.units",
                f'{use.units} units can never be granted by "{use.key}", whose burst is '
                f"{burst}"))
    return problems
