"""One sink's consumer: its own thread and connection; writes a batch, then acknowledges it."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import structlog
from kombu.messaging import Consumer as KombuConsumer
from kombu.messaging import Producer

from logfan.daemon.broker import connection, topology
from logfan.daemon.broker.failure import explain
from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.config.sink import SinkConfig
from logfan.daemon.consume.counters import sink_metrics
from logfan.daemon.consume.deadletter import publish_dead
from logfan.daemon.consume.figures import SinkFigures, SinkState
from logfan.daemon.consume.prefetch import Prefetch
from logfan.daemon.consume.queuewatch import QueueWatch
from logfan.daemon.envelope import decode_delivery_block, now_timestamp
from logfan.sinks.base import (
    PermanentSinkError,
    Record,
    RetryableSinkError,
    Sink,
    SinkError,
    SupportsReopen,
)
from logfan.sinks.batch import Batch, Block
from logfan.sinks.truncation import truncate_text

#: how long to wait for more deliveries before writing what has arrived.
LINGER = 0.0005
#: a batch is written once its bodies reach this size, bounding the records decoded at once.
BATCH_BYTES = 1 << 20
IDLE_WAIT = 1.0
BACKOFF_MIN = 0.5
BACKOFF_MAX = 30.0


def _utf8_size(messages: Sequence[str]) -> int:
    """The UTF-8 bytes of ``messages`` (a lone surrogate counted as its three bytes)."""
    text = "".join(messages)
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


class Held(NamedTuple):
    """A delivery taken from the queue and not yet acknowledged, with when it was taken."""

    delivery: Any
    #: time.time() when the consumer received it: the time of its lines that carry none.
    received: float


class SinkConsumer(threading.Thread):
    """Consumes ``logfan.<sink>`` into one sink, never dying from a sink or broker error.

    Deliveries are held until they make a batch (up to ``prefetch``, or until nothing more
    arrives within a short linger), decoded into records, written and flushed by the sink, and
    only then acknowledged.
    RetryableSinkError (the target is down) keeps the batch and retries it after exponential,
    jittered back-off, forever, while the connection keeps being served (heartbeats).
    PermanentSinkError, or any other error ``max_retries`` times in a row, has the batch's lines
    tried one by one; the ones that still fail go to ``logfan.<sink>.dead``.
    """

    def __init__(self, broker_config: BrokerConfig, sink_config: SinkConfig, sink: Sink) -> None:
        super().__init__(name=f"sink-{sink_config.name}", daemon=True)
        self.broker_config = broker_config
        self.sink_config = sink_config
        self.sink = sink
        self.figures = SinkFigures()
        self.metrics = sink_metrics(sink_config.name, sink_config.type)
        self.log = structlog.get_logger("logfan.consumer").bind(sink=sink_config.name)
        self._stop_event = threading.Event()
        self._held: list[Held] = []
        self._held_bytes = 0
        #: when the oldest delivery in ``_held`` arrived (monotonic)
        self._held_since = 0.0
        self._attempts = 0
        self._retry_at = 0.0
        self._backoff = BACKOFF_MIN
        self._sink_open = False
        self._down_since: float | None = None
        self._producer: Any = None
        self._embedded = False
        self._queue_watch = QueueWatch(self)
        self._reopen = threading.Event()
        self._prefetch = Prefetch(broker_config.prefetch)
        #: unexpected sink errors already logged with their traceback in this episode
        self._reported: set[tuple[str, str]] = set()
        #: lines of the batch being written that its selection did not take
        self._filtered = 0
        #: the sink's own count of lines it shortened, as last added to the metrics
        self._sink_truncated = 0
        #: the lasting broker refusal (its reason) logged in this episode of failed connects
        self._refused: str | None = None

    def stop(self) -> None:
        """Ask the thread to finish its current batch and return."""
        self._stop_event.set()

    def _on_delivery(self, delivery: Any) -> None:
        if not self._held:
            self._held_since = time.monotonic()
        self._held.append(Held(delivery, time.time()))
        self._held_bytes += len(delivery.body)

    def held(self) -> list[Any]:
        """Deliveries taken from the queue and not yet acknowledged (at most ``prefetch``)."""
        return [held.delivery for held in self._held]

    def request_reopen(self) -> None:
        """Have the sink's ``reopen()`` (if it has one) called from this thread (after SIGHUP)."""
        self._reopen.set()

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
            except Exception as exc:  # noqa: BLE001 - the thread outlives any failure; it logs
                self._disconnected(exc, delay)
                deadline = time.monotonic() + delay
                while not self._stop_event.wait(min(IDLE_WAIT, deadline - time.monotonic())):
                    self.figures.tick_at = time.monotonic()
                    if time.monotonic() >= deadline:
                        break
                delay = min(BACKOFF_MAX, delay * 2) if time.monotonic() - started < 60 else 0.5
        self._close_sink()
        self.figures.state = SinkState.STOPPED

    def _disconnected(self, exc: Exception, delay: float) -> None:
        """Note a failed or lost connection. One that retrying cannot heal (a wrong login,
        vhost, permission or certificate) is logged as an error once per episode, and again only
        if its reason changes; each retry is then logged at debug level. An episode ends when a
        connection succeeds."""
        self._held = []  # unacked: the broker delivers them again
        self._held_bytes = 0
        if self._down_since is None:
            self._down_since = time.monotonic()
        self.figures.state = SinkState.DISCONNECTED
        failure = explain(exc, self.broker_config)
        self.figures.last_error = failure.reason
        details = {
            "error": failure.reason,
            "error_type": failure.error_type,
            "retry_in": round(delay, 2),
        }
        if not failure.permanent:
            self.log.warning("consumer disconnected", **details)
        elif failure.reason != self._refused:
            self._refused = failure.reason
            self.log.error("consumer disconnected", permanent=True, cause=failure.kind, **details)
        else:
            self.log.debug("consumer still refused", **details)

    def _session(self) -> None:
        options = {"confirm_publish": True}  # dead letters are confirmed before the ack
        with connection.connected(self.broker_config, transport_options=options) as conn:
            channel = topology.declare(
                conn, self.broker_config, [self.sink_config], warn=self._warn_mismatch
            )
            consumer = KombuConsumer(
                channel,
                queues=[topology.sink_queue(self.broker_config, self.sink_config)],
                on_message=self._on_delivery,
                prefetch_count=self._prefetch.count,
                no_ack=False,
                auto_declare=False,
            )
            self._producer = Producer(channel)
            self._embedded = connection.is_embedded(conn)
            with consumer:
                # the depth first: a sink shown consuming shows its backlog too
                self._queue_watch.check(channel, now=True)
                self._connected(conn)
                self._try_open_sink()
                self._serve(conn, consumer)
                if self._held and time.monotonic() >= self._retry_at:
                    self._write_held()  # graceful stop: what is in hand is written and acked

    def _warn_mismatch(self, advice: str) -> None:
        self.log.error("queue arguments differ from the config", advice=advice)

    def _connected(self, conn: Any) -> None:
        self.figures.connects += 1
        if self.figures.connects > 1:
            self.metrics.reconnects.inc()
        self._refused = None  # the episode is over: the next refusal is logged again
        if self.figures.state == SinkState.DISCONNECTED:
            self.figures.last_error = None  # the broker is back: its error is history
        self.figures.state = SinkState.RETRYING if self._retry_at else SinkState.CONSUMING
        url = connection.describe(conn)
        self.figures.node = url
        if self._down_since is None:
            self.log.info("consumer connected", url=url, queue=self.sink_config.queue)
        else:
            down = round(time.monotonic() - self._down_since, 3)
            self.log.info("consumer reconnected", url=url, down_for=down)
            self._down_since = None

    def _serve(self, conn: Any, consumer: KombuConsumer) -> None:
        while not self.stopping:
            self.figures.tick_at = time.monotonic()
            if self._reopen.is_set():
                self._reopen_sink()
            wait = min(max(self._retry_at - time.monotonic(), LINGER), IDLE_WAIT)
            arrived = self._drain(conn, wait if self._held else IDLE_WAIT)
            self._queue_watch.check(consumer.channel)
            if not self._held or time.monotonic() < self._retry_at:
                continue
            if not arrived or self._batch_due(time.monotonic()):
                self._write_held()
                if not self._held and self._prefetch.due():
                    self._prefetch.apply(consumer, embedded=self._embedded)

    def _drain(self, conn: Any, timeout: float) -> bool:
        """Take what arrives within ``timeout``; whether anything did. While a batch waits
        for more, the wait is a select() on the socket, which keeps the linger as short as it
        says (a socket timeout rounds it up to a millisecond)."""
        if self._held and not self._embedded and timeout < IDLE_WAIT:
            if connection.readable(conn, timeout) is False:
                conn.heartbeat_check()
                return False
            timeout = IDLE_WAIT  # a frame is on its way: read it whole
        try:
            conn.drain_events(timeout=timeout)
        except TimeoutError:
            if not self._embedded:
                conn.heartbeat_check()
            return False
        return True

    def _reopen_sink(self) -> None:
        self._reopen.clear()
        if self._sink_open and isinstance(self.sink, SupportsReopen):
            try:
                self.sink.reopen()
                self.log.info("sink reopened")
            except Exception as exc:  # noqa: BLE001 - the next write reopens or retries
                self.log.warning("sink reopen failed", error=str(exc))
                self._close_sink()
        self.figures.reopened += 1

    def _try_open_sink(self) -> None:
        """Open the sink at once, so a target that is down shows before the first line does."""
        try:
            self._open_sink()
        except Exception as exc:  # noqa: BLE001 - reported as the sink's state; writes retry
            self._unexpected(exc)
            self._failed(exc)

    def _open_sink(self) -> None:
        if not self._sink_open:
            self.sink.open()
            self._sink_open = True

    def _close_sink(self) -> None:
        if self._sink_open:
            self._sink_open = False
            try:
                self.sink.close()
            except Exception as exc:  # noqa: BLE001 - closing is best effort
                self.log.warning("sink close failed", error=str(exc))

    def _truncate(self, block: Block) -> Block:
        limit = self.sink_config.max_line_bytes
        messages = block.message
        if not messages or max(map(len, messages)) <= limit // 4:  # surely within limit bytes
            return block
        out: list[str] | None = None
        for i, message in enumerate(messages):
            if len(message) > limit // 4:
                text, cut = truncate_text(message, limit)
                if cut:
                    out = out if out is not None else list(messages)
                    out[i] = text
                    self.figures.truncated += 1
                    self.metrics.truncated.inc()
        # a cut message ends in a marker: no control character comes with it
        return block if out is None else block.with_messages(out, clean=block.clean)

    def _block(self, held: Held) -> Block:
        """The lines of a delivery; one that names no host gets the daemon's, one that has no
        time the time this consumer received it (so a retried batch keeps its times)."""
        host = self.sink_config.host
        try:
            return decode_delivery_block(held.delivery, host, held.received)
        except Exception as exc:  # noqa: BLE001 - decode never raises; if it does, the line
            # must not wedge the queue (the same delivery would fail again after a reconnect).
            self.log.error("undecodable delivery written as its repr", error=repr(exc))
            body = repr(held.delivery.body)
            return Block.of([Record(body, now_timestamp(held.received), host)])

    def _batch_due(self, now: float) -> bool:
        """While deliveries keep arriving: whether the batch is full, or its oldest line has
        waited ``flush_interval`` (a steady trickle never leaves the LINGER gap ending a batch)."""
        return (
            len(self._held) >= self._prefetch.count
            or self._held_bytes >= BATCH_BYTES
            or now - self._held_since >= self.sink_config.flush_interval
        )

    def _write_held(self) -> None:
        """Write what is held, in batches of at most BATCH_BYTES of bodies, each acked at once.

        The cap bounds the records decoded at a time however many lines a delivery packs; a
        failure keeps the unwritten deliveries held for the retry.
        """
        while self._held:
            size, count = 0, 0
            for held in self._held:
                if count and size + len(held.delivery.body) > BATCH_BYTES:
                    break
                size += len(held.delivery.body)
                count += 1
            if not self._write_batch(self._held[:count]):
                return
            self._prefetch.observe(count, size)
            self._held = self._held[count:]
            self._held_bytes -= size

    def _write_batch(self, batch: list[Held]) -> bool:
        blocks = [self._truncate(self._block(held)) for held in batch]
        deliveries = [held.delivery for held in batch]
        selection = self.sink_config.select
        if selection is not None:
            received = sum(map(len, blocks))
            blocks = [selection.select_block(block) for block in blocks]
            self._filtered = received - sum(map(len, blocks))
        records = Batch(blocks)
        if not records.blocks:
            self._done(deliveries, records)
            return True
        try:
            self._open_sink()
            started = time.perf_counter()
            self.sink.write(records)
            self.sink.flush()
            self.metrics.write_seconds.observe(time.perf_counter() - started)
        except RetryableSinkError as exc:
            self._failed(exc)
            return False
        except Exception as exc:  # noqa: BLE001 - a refused line or a plugin bug: counted
            self._unexpected(exc)
            self._attempts += 1
            if (
                not isinstance(exc, PermanentSinkError)
                and self._attempts < self.sink_config.max_retries
            ):
                self._failed(exc)
                return False
            written = self._isolate(records, exc)
            if written is None:
                return False
            self._done(deliveries, written)
            return True
        self._done(deliveries, records)
        return True

    def _isolate(self, records: Sequence[Record], first: Exception) -> list[Record] | None:
        """Write the lines one by one, dead-lettering those the sink refuses; returns the lines
        written (None: a retryable error came, and the batch is retried later)."""
        self.log.warning(
            "batch refused; trying its lines one by one",
            error=str(first),
            attempts=self._attempts,
            lines=len(records),
        )
        written = []
        for record in records:
            try:
                self._open_sink()
                self.sink.write([record])
                self.sink.flush()
                written.append(record)
            except RetryableSinkError as exc:
                self._failed(exc)
                return None
            except Exception as exc:  # noqa: BLE001 - this line is the one the sink refuses
                self._unexpected(exc)
                publish_dead(
                    self._producer, self.sink_config, record, f"{type(exc).__name__}: {exc}"
                )
                self.figures.dead_lettered += 1
                self.metrics.dead_lettered.inc()
                self.log.error(
                    "line dead-lettered",
                    reason=str(exc),
                    queue=self.sink_config.dead_queue,
                    msgid=record.msgid,
                )
        return written

    def _unexpected(self, exc: Exception) -> None:
        """A sink error that is none of the contract's (a plugin's bug): its traceback, once
        per distinct error until the sink writes a batch again."""
        if isinstance(exc, SinkError):
            return
        key = (type(exc).__name__, str(exc))
        if key not in self._reported:
            self._reported.add(key)
            self.log.error(
                "sink raised an unexpected error",
                sink_type=self.sink_config.type,
                error=str(exc),
                error_type=type(exc).__name__,
                exc_info=exc,
            )

    def _done(self, deliveries: list[Any], written: Sequence[Record]) -> None:
        """The batch is written (``written``: its lines the sink took): counted, then acked.

        The metrics count it before the ack, so that they count what the sink's target holds
        (a batch written again after a crash before its ack is there twice, and counted twice).
        """
        self._reported.clear()
        if written:
            self._count(written)
        self.metrics.filtered.inc(self._filtered)
        self._ack(deliveries)
        lines = len(written)
        self.figures.delivered += lines
        self.figures.filtered += self._filtered
        self._filtered = 0
        self.figures.deliveries += len(deliveries)
        self.figures.redelivered += sum(1 for d in deliveries if d.delivery_info.get("redelivered"))
        self.figures.progress_at = time.monotonic()
        if self.figures.state == SinkState.RETRYING:
            self.log.info("sink recovered", retries=self.figures.retries)
            self.figures.last_error = None
        self.figures.state = SinkState.CONSUMING
        self._attempts = 0
        self._backoff = BACKOFF_MIN
        self._retry_at = 0.0

    def _count(self, written: Sequence[Record]) -> None:
        metrics = self.metrics
        metrics.lines.inc(len(written))
        if isinstance(written, Batch):
            metrics.bytes.inc(sum(_utf8_size(block.message) for block in written.blocks))
        else:  # the lines of a batch written one by one
            metrics.bytes.inc(_utf8_size([record.message for record in written]))
        metrics.batches.inc()
        sink_truncated = int(getattr(self.sink, "truncated", 0) or 0)
        if sink_truncated > self._sink_truncated:
            metrics.truncated.inc(sink_truncated - self._sink_truncated)
        self._sink_truncated = sink_truncated
        self.figures.written_at = time.time()

    def _failed(self, exc: Exception) -> None:
        self.figures.retries += 1
        self.metrics.retries.inc()
        self.figures.last_error = str(exc)
        if self.figures.state != SinkState.RETRYING:
            self.log.warning(
                "sink write failed; retrying", error=str(exc), error_type=type(exc).__name__
            )
            self.figures.state = SinkState.RETRYING
        self._close_sink()
        self._retry_at = time.monotonic() + self._backoff * random.uniform(0.75, 1.25)  # noqa: S311
        self._backoff = min(BACKOFF_MAX, self._backoff * 2)

    def _ack(self, deliveries: list[Any]) -> None:
        if not deliveries:
            return
        if self._embedded:
            for delivery in deliveries:
                delivery.ack()
        else:
            last = deliveries[-1]
            last.channel.basic_ack(last.delivery_tag, multiple=True)
