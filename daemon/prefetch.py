"""How many messages a consumer lets the broker hand it: ``prefetch``, bounded in bytes too.

AMQP bounds unacknowledged messages by count only (RabbitMQ ignores ``prefetch_size``), and a
message may hold one line or a thousand. A count that suits single lines (``prefetch: 100``)
would hold 100 emitter batches of up to 256 KiB each, in every sink's worker. The consumer keeps
an average of its message sizes and sets the channel's prefetch count so that what it holds
stays near PREFETCH_BYTES, never above the configured ``prefetch``, never below PREFETCH_MIN.
It starts at PREFETCH_START: a backlog of large messages must not fill it before it knows.
"""

from __future__ import annotations

from typing import Any

#: what a consumer aims to hold, in message bodies.
PREFETCH_BYTES = 2 << 20
#: the fewest messages a consumer asks for, however large they are.
PREFETCH_MIN = 4
#: the count a consumer starts with, before it has seen a message (then it doubles per batch).
PREFETCH_START = 16
#: weight of the newest batch in the average message size.
_WEIGHT = 0.25


class Prefetch:
    """The prefetch count in force on one consumer's channel, tuned after each batch."""

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

    def observe(self, consumer: Any, messages: int, size: int) -> None:
        """Take a written batch into the average; change the channel's count when it is off by 2x.

        ``consumer`` is the kombu Consumer (its ``qos`` sends basic.qos on its channel).
        """
        if not messages:
            return
        mean = size / messages
        self._average = (
            mean if self._average is None else (self._average + _WEIGHT * (mean - self._average))
        )
        want = self.wanted()
        if (
            want * 2 <= self.count
            or want >= self.count * 2
            or (want == self.limit and self.count != self.limit)
        ):
            consumer.qos(prefetch_count=want)
            self.count = want
