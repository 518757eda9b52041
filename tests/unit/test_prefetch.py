"""The prefetch count: bounded by ``prefetch`` and by the bytes a consumer would hold."""

from __future__ import annotations

from logfan.daemon.prefetch import PREFETCH_BYTES, PREFETCH_MIN, PREFETCH_START, Prefetch


class Channel:
    """Records the counts basic.qos was sent with (what kombu's Consumer.qos does)."""

    def __init__(self) -> None:
        self.counts: list[int] = []

    def qos(self, *, prefetch_count: int) -> None:
        self.counts.append(prefetch_count)


def test_starts_small_and_grows_to_the_limit_for_single_lines() -> None:
    prefetch, channel = Prefetch(100), Channel()
    assert prefetch.count == PREFETCH_START
    prefetch.observe(channel, messages=PREFETCH_START, size=PREFETCH_START * 120)
    assert prefetch.count == 100
    assert channel.counts == [100]


def test_large_messages_are_held_up_to_the_byte_budget() -> None:
    prefetch, channel = Prefetch(1000), Channel()
    body = 130_000  # an emitter envelope of 1,000 lines
    for _ in range(20):
        prefetch.observe(channel, messages=8, size=8 * body)
    assert prefetch.count * body <= PREFETCH_BYTES
    assert prefetch.count * body * 2 > PREFETCH_BYTES, "not smaller than it needs to be"
    assert len(channel.counts) <= 2, "basic.qos is sent on real changes only"


def test_never_below_the_minimum_nor_above_the_configured_prefetch() -> None:
    prefetch, channel = Prefetch(50), Channel()
    prefetch.observe(channel, messages=4, size=4 * (64 << 20))
    assert prefetch.count == PREFETCH_MIN
    tiny = Prefetch(2)
    tiny.observe(channel, messages=2, size=2 * (64 << 20))
    assert tiny.count == 2, "a configured prefetch below the minimum is kept"


def test_an_empty_batch_changes_nothing() -> None:
    prefetch, channel = Prefetch(100), Channel()
    prefetch.observe(channel, messages=0, size=0)
    assert prefetch.count == PREFETCH_START
    assert channel.counts == []
