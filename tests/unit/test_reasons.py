"""The operator's vocabulary: reasons are their wire strings; which pool problems block work."""

from __future__ import annotations

import json

import pytest

from conveyor_operator.reasons import (
    ConditionReason,
    ConditionType,
    EventReason,
    EventType,
    PoolProblem,
)


@pytest.mark.parametrize(("reason", "blocks"), [
    (ConditionReason.REDIS_UNAVAILABLE, False),
    (ConditionReason.INVALID_SPEC, True),
    (ConditionReason.REDIS_SECRET_MISSING, True),
    (ConditionReason.NAMESPACE_NOT_FOUND, True),
    (ConditionReason.DEPLOYMENT_FAILED, True),
])
def test_which_pool_problems_block_work(reason: ConditionReason, blocks: bool) -> None:
    assert PoolProblem(reason, "why").blocks_work is blocks


@pytest.mark.parametrize("enum", [ConditionType, ConditionReason, EventType, EventReason])
def test_reasons_are_camel_case_words_that_serialise_as_themselves(enum: type) -> None:
    for member in enum:
        assert member.value[0].isupper() and member.value.isalpha(), member
        assert json.loads(json.dumps({"reason": member})) == {"reason": member.value}
        assert f"{member}" == str(member) == member.value
