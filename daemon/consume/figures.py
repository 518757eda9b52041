"""The figures one sink's consumer keeps, read for logs, ``STATUS=``, the watchdog and status."""

from __future__ import annotations

import time

__all__ = ["SinkStats"]


class SinkStats:
    """Figures one consumer keeps; read by the supervisor for logs and status."""

    def __init__(self) -> None:
        self.delivered = 0
        self.messages = 0
        self.redelivered = 0
        self.dead_lettered = 0
        self.dropped = 0
        self.truncated = 0
        self.node: str | None = None
        self.retries = 0
        self.connects = 0
        self.last_error: str | None = None
        self.state = "starting"
        self.backlog: int | None = None
        self.progress_at = time.monotonic()
        #: last time the consumer's loop went round; the watchdog checks it is recent.
        self.tick_at = time.monotonic()
