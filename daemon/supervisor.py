"""The supervisor: one consumer thread per sink, restarted if it dies, stopped gracefully."""

from __future__ import annotations

import signal
import threading
import time
from types import FrameType

import structlog

from logfan.daemon.brokerurl import redact
from logfan.daemon.config import Config, SinkConfig, build_sink
from logfan.daemon.consumer import SinkConsumer

#: how long a graceful stop may take before the daemon exits anyway (systemd's default is 90 s).
STOP_TIMEOUT = 8.0


class Supervisor:
    """Runs the daemon: starts every sink's consumer, watches them, stops them on SIGTERM/SIGINT."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.consumers: dict[str, SinkConsumer] = {}
        self.log = structlog.get_logger("logfan.supervisor")
        self._wake = threading.Event()
        self._signal: int | None = None

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        # A handler only records the signal; the main loop does the work.
        self._signal = signum
        self._wake.set()

    def _start(self, sink_config: SinkConfig) -> None:
        consumer = SinkConsumer(self.config.broker, sink_config, build_sink(sink_config))
        self.consumers[sink_config.name] = consumer
        consumer.start()

    def run(self, pending_signal: int | None = None) -> int:
        """Serve until SIGTERM or SIGINT (or ``pending_signal``, one that came during start-up)."""
        self._signal = pending_signal
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._handle)
        self.log.info(
            "logfan starting",
            config=self.config.path,
            broker=redact(self.config.broker.url),
            exchange=self.config.broker.exchange,
            sinks=[s.name for s in self.config.sinks],
        )
        for sink_config in self.config.sinks:
            self._start(sink_config)
        while self._signal is None:
            self._wake.wait(1.0)
            self._restart_dead()
        self.log.info("logfan stopping", signal=signal.Signals(self._signal).name)
        return self.stop()

    def _restart_dead(self) -> None:
        for sink_config in self.config.sinks:
            consumer = self.consumers[sink_config.name]
            if not consumer.is_alive() and not consumer.stopping:
                self.log.error(
                    "consumer thread died; restarting it",
                    sink=sink_config.name,
                    last_error=consumer.stats.last_error,
                )
                self._start(sink_config)

    def stop(self) -> int:
        """Stop every consumer (each writes and acks what it holds); 0 if all stopped in time."""
        for consumer in self.consumers.values():
            consumer.stop()
        deadline = time.monotonic() + STOP_TIMEOUT
        for consumer in self.consumers.values():
            consumer.join(max(0.0, deadline - time.monotonic()))
        stuck = [name for name, c in self.consumers.items() if c.is_alive()]
        totals = {
            name: {
                "delivered": c.stats.delivered,
                "redelivered_messages": c.stats.redelivered,
                "dead_lettered": c.stats.dead_lettered,
                "dropped": c.stats.dropped,
            }
            for name, c in self.consumers.items()
        }
        if stuck:
            self.log.error("consumers did not stop in time; unacked lines stay queued", sinks=stuck)
            return 1
        self.log.info("logfan stopped", sinks=totals)
        return 0
