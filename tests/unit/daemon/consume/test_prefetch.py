"""The prefetch count: bounded by ``prefetch`` and by the bytes a consumer would hold."""

from __future__ import annotations

from logfan.daemon.consume.prefetch import PREFETCH_BYTES, PREFETCH_MIN, PREFETCH_START, Prefetch


class Consumer:
    """Records what would be sent (kombu Consumer's cancel, qos and consume)."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def cancel(self) -> None:
        self.calls.append("cancel")

    def qos(self, *, prefetch_count: int) -> None:
        self.calls.append(("qos", prefetch_count))

    def consume(self) -> None:
        self.calls.append("consume")


def test_starts_small_and_grows_to_the_limit_for_single_lines() -> None:
    prefetch, consumer = Prefetch(100), Consumer()
    assert prefetch.count == PREFETCH_START
    prefetch.observe(deliveries=PREFETCH_START, size=PREFETCH_START * 120)
    assert prefetch.due()
    prefetch.apply(consumer, embedded=False)
    assert prefetch.count == 100
    assert consumer.calls == ["cancel", ("qos", 100), "consume"], "RabbitMQ needs a new consumer"
    assert not prefetch.due()


def test_large_messages_are_held_up_to_the_byte_budget() -> None:
    prefetch, consumer = Prefetch(1000), Consumer()
    body = 100_000  # envelopes of 1,000 lines of 100 bytes
    for _ in range(20):
        prefetch.observe(deliveries=8, size=8 * body)
        if prefetch.due():
            prefetch.apply(consumer, embedded=True)
    assert prefetch.count * body <= PREFETCH_BYTES
    assert prefetch.count * body * 2 > PREFETCH_BYTES, "not smaller than it needs to be"
    assert consumer.calls == [("qos", prefetch.count)], "the embedded broker: basic.qos alone"


def test_never_below_the_minimum_nor_above_the_configured_prefetch() -> None:
    prefetch = Prefetch(50)
    prefetch.observe(deliveries=4, size=4 * (64 << 20))
    assert prefetch.wanted() == PREFETCH_MIN
    tiny = Prefetch(2)
    tiny.observe(deliveries=2, size=2 * (64 << 20))
    assert tiny.wanted() == 2, "a configured prefetch below the minimum is kept"
    assert not tiny.due()


def test_an_empty_batch_changes_nothing() -> None:
    prefetch = Prefetch(100)
    prefetch.observe(deliveries=0, size=0)
    assert prefetch.count == PREFETCH_START
    assert prefetch.wanted() == 100, "no size seen yet: the configured prefetch is wanted"
