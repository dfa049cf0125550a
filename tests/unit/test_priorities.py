"""Priorities' decisions as tables (pure): the band of a priority, the weighted read order
(and that it starves no band), and the blocking read's plan."""

from __future__ import annotations

from collections import Counter

import pytest

from conveyor_engine.priorities import (
    BANDS,
    CYCLE,
    Band,
    band_of,
    blocking_plan,
    check_priority,
    read_order,
)
from conveyor_engine.queue import by_band, entry_id, split_id

H, N, L = Band.HIGH, Band.NORMAL, Band.LOW


@pytest.mark.parametrize(("priority", "band"), [
    (1000, H), (1, H), (0, N), (-1, L), (-1000, L)])
def test_band_of(priority: int, band: Band) -> None:
    assert band_of(priority) == band


@pytest.mark.parametrize(("value", "message"), [
    (1001, "priority: 1001 is outside -1000..1000"),
    (-1001, "priority: -1001 is outside -1000..1000"),
    ("5", "priority: must be an integer, not '5'"),
    (True, "priority: must be an integer, not True"),
])
def test_check_priority_names_the_field(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_priority(value)


@pytest.mark.parametrize(("tick", "order"), [
    (0, (H, N, L)), (1, (H, N, L)), (2, (H, N, L)), (3, (N, H, L)),
    (4, (H, N, L)), (5, (H, N, L)), (6, (H, N, L)), (7, (L, H, N)),
    (8, (H, N, L)), (11, (N, H, L)), (15, (L, H, N)),
])
def test_read_order(tick: int, order: tuple[Band, ...]) -> None:
    assert read_order(tick) == order


def first_picks(reads: int, nonempty: set[Band]) -> Counter[Band]:
    """Which band each of ``reads`` one-entry reads takes from, all bands always full."""
    return Counter(next(b for b in read_order(t) if b in nonempty) for t in range(reads))


@pytest.mark.parametrize(("nonempty", "shares"), [
    # Every band backlogged: high 6, normal 1, low 1 of every 8 reads; none starved.
    ({H, N, L}, {H: 6, N: 1, L: 1}),
    ({H, L}, {H: 7, L: 1}),
    ({H, N}, {H: 7, N: 1}),
    ({N, L}, {N: 7, L: 1}),
    ({N}, {N: 8}),
])
def test_no_nonempty_band_is_starved(nonempty: set[Band], shares: dict[Band, int]) -> None:
    assert first_picks(CYCLE * 10, nonempty) == Counter({b: n * 10 for b, n in shares.items()})


@pytest.mark.parametrize(("order", "free", "plan"), [
    (BANDS, 256, (BANDS, 85)),
    (BANDS, 3, (BANDS, 1)),
    ((L, H, N), 2, ((L, H), 1)),
    (BANDS, 1, ((H,), 1)),
    (BANDS, 0, ((), 0)),
])
def test_blocking_plan_never_reads_more_than_the_free_slots(
        order: tuple[Band, ...], free: int, plan: tuple[tuple[Band, ...], int]) -> None:
    assert blocking_plan(order, free) == plan
    bands, count = plan
    assert len(bands) * count <= free


@pytest.mark.parametrize(("band", "stream_id", "message_id"), [
    (N, "1-0", "1-0"), (H, "1-0", "high/1-0"), (L, "17-3", "low/17-3")])
def test_entry_ids_of_bands(band: Band, stream_id: str, message_id: str) -> None:
    assert entry_id(band, stream_id) == message_id
    assert split_id(message_id) == (band, stream_id)


def test_by_band_groups_in_order() -> None:
    assert by_band(["1-0", "high/1-0", "2-0", "low/5-0"]) == {
        N: ["1-0", "2-0"], H: ["1-0"], L: ["5-0"]}
