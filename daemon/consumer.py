"""One sink's consumer: its own thread and connection; writes a batch, then acknowledges it."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import structlog
from kombu.messaging import Consumer, Producer

from logfan.daemon import broker
from logfan.daemon.brokerurl import redact
from logfan.daemon.config import BrokerConfig, SinkConfig
from logfan.daemon.envelope import CONTENT_TYPE, decode, encode
from logfan.sinks.base import PermanentSinkError, Record, RetryableSinkError, Sink

#: how long to wait for more messages before writing what has arrived.
LINGER = 0.01
IDLE_WAIT = 1.0
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0


class SinkStats:
    """Figures one consumer keeps; read by the supervisor for logs and status."""

    def __init__(self) -> None:
        self.delivered = 0
        self.messages = 0
        self.redelivered = 0
        self.dead_lettered = 0
        self.retries = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.state = "starting"
        self.progress_at = time.monotonic()


class SinkConsumer(threading.Thread):
    """Consumes ``logfan.<sink>`` into one sink, never dying from a sink or broker error.

    Messages are gathered into a batch (up to ``prefetch``, or until nothing more arrives within
    a short linger), decoded, written and flushed by the sink, and only then acknowledged.
    A retryable sink error keeps the batch and retries it after an exponential, jittered
    back-off while the connection keeps being served (heartbeats). A permanent error sends the
    offending lines to ``logfan.<sink>.dead``.
    """

    def __init__(self, broker_config: BrokerConfig, sink_config: SinkConfig, sink: Sink) -> None:
        super().__init__(name=f"sink-{sink_config.name}", daemon=True)
        self.broker_config = broker_config
        self.sink_config = sink_config
        self.sink = sink
        self.stats = SinkStats()
        self.log = structlog.get_logger("logfan.consumer").bind(sink=sink_config.name)
        self._stop_event = threading.Event()
        self._pending: list[Any] = []
        self._retry_at = 0.0
        self._backoff = BACKOFF_MIN
        self._sink_open = False

    def stop(self) -> None:
        """Ask the thread to finish its current batch and return."""
        self._stop_event.set()

    @property
    def stopping(self) -> bool:
        """True once stop() was called."""
        return self._stop_event.is_set()

    def run(self) -> None:
        """Serve the queue until stopped, reconnecting with back-off after any failure."""
        delay = BACKOFF_MIN
        while not self.stopping:
            started = time.monotonic()
            try:
                self._session()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any failure; it logs and retries
                self.stats.state = "disconnected"
                self.stats.last_error = redact(str(exc)) or type(exc).__name__
                self.log.warning(
                    "consumer disconnected",
                    error=self.stats.last_error,
                    error_type=type(exc).__name__,
                    retry_in=round(delay, 2),
                )
                self._pending.clear()  # unacked: the broker redelivers them
                self._stop_event.wait(delay)
                delay = min(BACKOFF_MAX, delay * 2) if time.monotonic() - started < 60 else 0.5
        self._close_sink()
        self.stats.state = "stopped"

    def _session(self) -> None:
        with broker.connect(self.broker_config) as conn:
            conn.ensure_connection(max_retries=1)
            channel = broker.declare(conn, self.broker_config, [self.sink_config])
            queue = broker.sink_queue(self.broker_config, self.sink_config)
            consumer = Consumer(
                channel,
                queues=[queue],
                on_message=self._on_message,
                prefetch_count=self.broker_config.prefetch,
                no_ack=False,
            )
            self._producer = Producer(channel)
            self._embedded = broker.is_embedded(conn)
            with consumer:
                if self.stats.reconnects or self.stats.state == "disconnected":
                    self.log.info("consumer reconnected", url=redact(conn.as_uri()))
                self.stats.reconnects += 1
                self.stats.state = "consuming"
                self._serve(conn)
                if self._pending and time.monotonic() >= self._retry_at:
                    self._write_pending()  # graceful stop: what is in hand is written and acked

    def _serve(self, conn: Any) -> None:
        while not self.stopping:
            wait = max(self._retry_at - time.monotonic(), LINGER)
            timeout = wait if self._pending else IDLE_WAIT
            try:
                conn.drain_events(timeout=timeout)
                arrived = True
            except TimeoutError:
                arrived = False
                if not self._embedded:
                    conn.heartbeat_check()
            if not self._pending or time.monotonic() < self._retry_at:
                continue
            if not arrived or len(self._pending) >= self.broker_config.prefetch:
                self._write_pending()

    def _open_sink(self) -> None:
        if not self._sink_open:
            self.sink.open()
            self._sink_open = True

    def _close_sink(self) -> None:
        if self._sink_open:
            self._sink_open = False
            try:
                self.sink.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort; the data is already acked
                self.log.warning("sink close failed", error=str(exc))

    def _records(self, message: Any) -> list[Record]:
        props = dict(message.properties)
        return decode(message.body, message.content_type, props)

    def _write_pending(self) -> None:
        batch = self._pending
        records: list[Record] = []
        for message in batch:
            records.extend(self._records(message))
        try:
            self._open_sink()
            self.sink.write(records)
            self.sink.flush()
        except PermanentSinkError as exc:
            self._dead_letter_batch(batch, str(exc))
        except Exception as exc:  # noqa: BLE001 - retryable, or a plugin bug: keep the batch and back off
            self._failed(exc)
            return
        self._ack(batch)
        self.stats.delivered += len(records)
        self.stats.messages += len(batch)
        self.stats.redelivered += sum(1 for m in batch if m.delivery_info.get("redelivered"))
        self.stats.progress_at = time.monotonic()
        if self.stats.state == "retrying":
            self.log.info("sink recovered", retries=self.stats.retries)
            self.stats.state = "consuming"
        self._backoff = BACKOFF_MIN
        self._retry_at = 0.0
        self._pending = []

    def _on_message(self, message: Any) -> None:
        self._pending.append(message)

    def _failed(self, exc: Exception) -> None:
        kind = "retryable" if isinstance(exc, RetryableSinkError) else type(exc).__name__
        self.stats.retries += 1
        self.stats.last_error = str(exc)
        if self.stats.state != "retrying":
            self.log.warning("sink write failed; retrying", error=str(exc), kind=kind)
            self.stats.state = "retrying"
        self._close_sink()
        self._retry_at = time.monotonic() + self._backoff * random.uniform(0.75, 1.25)  # noqa: S311
        self._backoff = min(BACKOFF_MAX, self._backoff * 2)

    def _ack(self, batch: list[Any]) -> None:
        if not batch:
            return
        if self._embedded:
            for message in batch:
                message.ack()
        else:
            batch[-1].channel.basic_ack(batch[-1].delivery_tag, multiple=True)

    def _dead_letter_batch(self, batch: list[Any], reason: str) -> None:
        """Find the lines the sink refuses, one by one, and dead-letter only those."""
        for message in batch:
            for record in self._records(message):
                try:
                    self.sink.write([record])
                    self.sink.flush()
                except PermanentSinkError as exc:
                    self._dead_letter(record, str(exc) or reason)

    def _dead_letter(self, record: Record, reason: str) -> None:
        body = encode(
            [(record.timestamp, record.message, record.severity)],
            msg_id=record.msgid,
            host=record.host,
            tag=record.tag,
            pid=int(record.pid) if record.pid.isdigit() else 0,
            severity=record.severity,
        )
        self._producer.publish(
            body,
            exchange="",
            routing_key=self.sink_config.dead_queue,
            content_type=CONTENT_TYPE,
            content_encoding="binary",
            delivery_mode=2,
            headers={"x-logfan-error": reason[:1000], "x-logfan-sink": self.sink_config.name},
        )
        self.stats.dead_lettered += 1
        self.log.error("line dead-lettered", reason=reason, queue=self.sink_config.dead_queue)
