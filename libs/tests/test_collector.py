"""A started process's collector (crm_libs.collector): what start-up built frozen, the young
generation collected every YOUNG_THRESHOLD new containers."""

import gc
from collections.abc import Iterator

import pytest

from crm_libs import collector


@pytest.fixture
def restored() -> Iterator[None]:
    threshold = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*threshold)


@pytest.mark.usefixtures("restored")
def test_start_up_is_frozen_and_the_young_collected_less_often() -> None:
    gc.set_threshold(700, 10, 10)
    built_at_start = [[n] for n in range(1000)]
    collector.settle_after_start()
    assert gc.get_threshold() == (collector.YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() >= len(built_at_start)
    # A request's few thousand containers in flight set off no collection (at 700, several).
    before = gc.get_stats()[0]["collections"]
    in_flight = [[n] for n in range(collector.YOUNG_THRESHOLD // 4)]
    assert gc.get_stats()[0]["collections"] == before
    assert len(in_flight) == collector.YOUNG_THRESHOLD // 4
