"""How many messages a consumer lets the broker hand it: ``prefetch``, bounded in bytes too.

AMQP bounds unacknowledged messages by count only (RabbitMQ ignores ``prefetch_size``), and a
message may hold one line or a thousand. A count that suits single lines (``prefetch: 100``)
would hold 100 emitter batches of up to 1 MiB each, in every sink's worker. The consumer keeps
an average of its message sizes and, when it holds nothing, sets the prefetch count so that
what it holds stays near PREFETCH_BYTES, never above the configured ``prefetch``, never below
PREFETCH_MIN. It starts at PREFETCH_START: a backlog of large messages must not fill it before
it knows their size.
"""

from __future__ import annotations

from typing import Any

#: what a consumer aims to hold, in message bodies.
PREFETCH_BYTES = 2 << 20
#: the fewest messages a consumer asks for, however large they are.
PREFETCH_MIN = 4
#: the count a consumer starts with, before it has seen a message.
PREFETCH_START = 4
#: weight of the newest batch in the average message size.
_WEIGHT = 0.25


class Prefetch:
    """The prefetch count in force on one consumer, tuned from the batches it wrote."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = min(limit, PREFETCH_START)
        self._average: float | None = None

    def wanted(self) -> int:
        """The count for the average message size seen so far."""
        if self._average is None:
            return self.limit
        by_size = int(PREFETCH_BYTES // max(self._average, 1.0))
        return max(min(PREFETCH_MIN, self.limit), min(self.limit, by_size))

    def observe(self, deliveries: int, size: int) -> None:
        """Take a written batch of ``deliveries`` holding ``size`` bytes into the average."""
        if not deliveries:
            return
        mean = size / deliveries
        if self._average is None:
            self._average = mean
        else:
            self._average += _WEIGHT * (mean - self._average)

    def due(self) -> bool:
        """Whether the count in force is off by 2x (or below the limit that is now wanted)."""
        want = self.wanted()
        return (
            want * 2 <= self.count
            or want >= self.count * 2
            or (want == self.limit and self.count != self.limit)
        )

    def apply(self, consumer: Any, *, embedded: bool) -> None:
        """Put the wanted count in force on ``consumer`` (a kombu Consumer) while it holds nothing.

        RabbitMQ applies basic.qos only to consumers started after it, so the consumer is
        cancelled, the count sent, and the consumer started again (deliveries that were on their
        way still reach its callback before the cancel is confirmed). The embedded broker reads
        the count at every delivery: basic.qos alone does.
        """
        want = self.wanted()
        if embedded:
            consumer.qos(prefetch_count=want)
        else:
            consumer.cancel()
            consumer.qos(prefetch_count=want)
            consumer.consume()
        self.count = want
