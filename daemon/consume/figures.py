"""The figures one sink's consumer keeps, read for logs, ``STATUS=``, the watchdog and status."""

from __future__ import annotations

import time
from enum import StrEnum

__all__ = ["SinkFigures", "SinkState"]


class SinkState(StrEnum):
    """Where a sink stands, as ``logfan status`` and ``STATUS=`` show it."""

    #: its worker was started and has not yet connected.
    STARTING = "starting"
    #: connected; its last batch was written (or none has come yet).
    CONSUMING = "consuming"
    #: its target refused the last batch; the batch is held and tried again after a back-off.
    RETRYING = "retrying"
    #: the broker connection was lost; the consumer reconnects with back-off.
    DISCONNECTED = "disconnected"
    #: its worker died; the supervisor starts it again.
    RESTARTING = "restarting"
    #: its consumer loop has not gone round for a while (stuck in a write, or its worker
    #: stopped); as the supervisor sees it, not as the worker reports.
    WEDGED = "wedged"
    #: asked to stop, and stopped.
    STOPPED = "stopped"


class SinkFigures:
    """Figures one consumer keeps; read by the supervisor for logs and status."""

    def __init__(self) -> None:
        #: lines written by the sink (and acknowledged).
        self.delivered = 0
        #: broker deliveries acknowledged.
        self.deliveries = 0
        #: of those, deliveries the broker had handed out before (after a crash or reconnect).
        self.redelivered = 0
        self.dead_lettered = 0
        #: lines a full queue dropped into the dead-letter queue (``max_queue``).
        self.dropped = 0
        #: lines cut to ``max_line_bytes``.
        self.truncated = 0
        #: lines the sink's ``select`` did not take (acknowledged, not written).
        self.filtered = 0
        self.node: str | None = None
        self.retries = 0
        self.connects = 0
        self.last_error: str | None = None
        self.state = SinkState.STARTING
        #: messages (deliveries to come) in the sink's queue at the last look (None: not yet).
        self.backlog: int | None = None
        #: reopen requests handled (after SIGHUP or a reload): the supervisor waits for them.
        self.reopened = 0
        self.progress_at = time.monotonic()
        #: when the sink last wrote a batch (wall clock; None: not yet).
        self.written_at: float | None = None
        #: last time the consumer's loop went round; the watchdog checks it is recent.
        self.tick_at = time.monotonic()
