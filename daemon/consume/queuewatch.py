"""A consumer's look at its queue: depth now and then, and a bounded queue's drops."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from logfan.daemon.consume.consumer import SinkConsumer

#: how often the queue's depth (and a bounded queue's drops) is read from the broker.
QUEUE_CHECK = 2.0


class QueueWatch:
    """Reads the queue's depth now and then; notices a bounded queue dropping its oldest lines.

    Drops are what the dead-letter queue gained beyond the lines this consumer put there; a
    warning is logged once per episode (until a check sees no new drops).
    """

    def __init__(self, owner: SinkConsumer) -> None:
        self.owner = owner
        self.bounded = owner.sink_config.max_queue or owner.sink_config.max_queue_bytes
        self.next_check = 0.0
        self.last_count: int | None = None
        self.last_dead_lettered = 0
        self.in_episode = False

    def check(self, channel: Any, *, now: bool = False) -> None:
        """Read the queue's depth if QUEUE_CHECK has passed since the last reading (or ``now``)."""
        started = time.monotonic()
        if started < self.next_check and not now:
            return
        self.next_check = started + QUEUE_CHECK
        config = self.owner.sink_config
        self.owner.figures.backlog = int(
            channel.queue_declare(queue=config.queue, passive=True).message_count
        )
        if self.bounded:
            count = int(channel.queue_declare(queue=config.dead_queue, passive=True).message_count)
            self._drops(count)

    def _drops(self, count: int) -> None:
        figures = self.owner.figures
        ours = figures.dead_lettered - self.last_dead_lettered
        self.last_dead_lettered = figures.dead_lettered
        dropped = 0 if self.last_count is None else max(0, count - self.last_count - ours)
        self.last_count = count
        if dropped:
            figures.dropped += dropped
            self.owner.metrics.dropped.inc(dropped)
            if not self.in_episode:
                self.owner.log.warning(
                    "queue full: dropping its oldest lines into the dead-letter queue",
                    queue=self.owner.sink_config.queue,
                    dead_queue=self.owner.sink_config.dead_queue,
                    max_queue=self.bounded,
                )
            self.in_episode = True
        elif self.in_episode:
            self.owner.log.info("queue no longer full", dropped_total=figures.dropped)
            self.in_episode = False
