"""`logfan tail`: a live view of the lines going through the exchange, on a queue of its own.

The tap queue ``logfan-tail.<host>.<pid>.<token>`` is bound to the config's exchange, so it gets
a copy of every message, as every sink queue does; it never touches a sink queue. It is
exclusive, auto-delete and not durable: it goes when its connection does. It is bounded: it
keeps the newest ``--buffer`` messages (1,000) and at most 16 MiB, and drops the oldest
(``drop-head``, with no dead-letter queue), so a terminal that reads slowly, or not at all,
costs the broker that much and no more. Each delivery is acknowledged as it arrives, with at
most ``PREFETCH`` of them in flight: a view, not a sink.

Which records are shown is one callable, ``accepts`` (all of them by default).
"""

from __future__ import annotations

import os
import select
import signal
import sys
import uuid
from collections.abc import Callable, Iterable
from types import FrameType
from typing import TYPE_CHECKING, Any

from kombu import Connection, Queue
from kombu.messaging import Consumer

from logfan.daemon.broker import connection, topology
from logfan.daemon.broker.url import error_text, redact
from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.envelope import decode_delivery, now_timestamp
from logfan.daemon.errors import BrokerError, LogfanError
from logfan.sinks.base import Record
from logfan.sinks.template import Template, render_lines

if TYPE_CHECKING:
    from logfan.daemon.consume.selection import Selection

#: each line as `logfan tail` shows it unless ``--format`` says otherwise
DEFAULT_FORMAT = "{timestamp} {host} {tag}[{pid}] {severity}: {message}"
#: the messages the tap queue keeps while the terminal does not keep up (``--buffer``)
DEFAULT_BUFFER = 1000
#: and the bytes of their bodies: an envelope may hold 1 MiB
BUFFER_BYTES = 16 << 20
#: deliveries the broker sends ahead of what the terminal took
PREFETCH = 16
#: how long an idle tail waits for a delivery before it checks that its reader is still there
IDLE_WAIT = 0.5
#: the exit status after Ctrl-C, as for the other commands (128 + SIGINT)
INTERRUPTED = 130

#: which records to show; the default shows every one
Accepts = Callable[[Record], bool]


def accept_all(record: Record) -> bool:
    """The default ``accepts``: every record."""
    return True


def selected_by(selection: Selection) -> Accepts:
    """``accepts`` for the lines a sink with ``selection`` writes."""
    return lambda record: bool(selection.select([record]))


def template_of(text: str) -> Template:
    """The ``--format`` template, or a LogfanError saying what is wrong with it."""
    try:
        return Template(text)
    except ValueError as exc:
        raise LogfanError(f"--format: {exc}") from None


def tap_name(host: str, pid: int, token: str) -> str:
    """The tap queue's name: whose it is, for ``rabbitmqctl list_queues``; never a sink queue's
    (those are ``logfan.<sink>``)."""
    return f"logfan-tail.{host}.{pid}.{token}"


def tap_arguments(buffer: int) -> dict[str, Any]:
    """The tap queue's bounds: the newest ``buffer`` messages and BUFFER_BYTES; the oldest are
    dropped (no dead-letter queue: a line the view missed is still in every sink queue)."""
    return {"x-max-length": buffer, "x-max-length-bytes": BUFFER_BYTES, "x-overflow": "drop-head"}


def tap_queue(broker: BrokerConfig, name: str, buffer: int) -> Queue:
    """The exclusive, auto-delete, non-durable, bounded queue ``name`` bound to the exchange."""
    return Queue(
        name,
        exchange=topology.exchange(broker),
        routing_key="",
        durable=False,
        exclusive=True,
        auto_delete=True,
        queue_arguments=tap_arguments(buffer),
    )


class Output:
    """Whole lines to a file descriptor (stdout), and whether its reader has gone."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._poll = select.poll()
        self._poll.register(fd, 0)  # no event asked for: errors and hang-ups are always told

    def write(self, text: str) -> None:
        """Write ``text`` (BrokenPipeError once the reader has gone)."""
        view = memoryview(text.encode("utf-8", "backslashreplace"))
        while view:
            view = view[os.write(self.fd, view) :]

    def gone(self) -> bool:
        """True once nobody can read what is written: a pipe whose reader exited (``| head``),
        a terminal that hung up."""
        gone = select.POLLERR | select.POLLHUP | select.POLLNVAL
        return any(events & gone for _, events in self._poll.poll(0))


class Tail:
    """What is shown: the records ``accepts`` takes, rendered with ``template``, control
    characters escaped (a line cannot move the cursor or forge another line), at most ``limit``
    lines (None: no limit)."""

    def __init__(
        self,
        template: Template,
        output: Output,
        *,
        accepts: Accepts = accept_all,
        limit: int | None = None,
    ) -> None:
        self.template = template
        self.output = output
        self.accepts = accepts
        self.limit = limit
        self.shown = 0

    @property
    def done(self) -> bool:
        """True once ``limit`` lines were shown."""
        return self.limit is not None and self.shown >= self.limit

    def show(self, records: Iterable[Record]) -> None:
        """Write the lines of ``records`` that are to be shown."""
        chosen = list(records if self.accepts is accept_all else filter(self.accepts, records))
        if self.limit is not None:
            chosen = chosen[: max(0, self.limit - self.shown)]
        if chosen:
            self.output.write(render_lines(self.template, chosen, "escape"))
            self.shown += len(chosen)


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived: the tail ends with ``status`` (130 for SIGINT, else 0).

    Raised from the signal handler, so it also ends a write blocked on a terminal that does
    not read; a KeyboardInterrupt, so what does not catch it ends like Ctrl-C, without a
    traceback."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.status = INTERRUPTED if signum == signal.SIGINT else 0


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


def run_tail(
    broker: BrokerConfig,
    tail: Tail,
    *,
    host: str,
    buffer: int = DEFAULT_BUFFER,
    announce: Callable[[str], None] | None = None,
) -> int:
    """Show what flows through the exchange until ``tail`` is done, its reader goes, or
    SIGINT/SIGTERM; the exit status. The tap queue is deleted on the way out.

    Raises BrokerError (one sentence) when the broker cannot be reached or is lost.
    """
    name = tap_name(host, os.getpid(), uuid.uuid4().hex[:8])
    previous = {signum: signal.signal(signum, _stop) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _Tap(broker, tail, name, buffer).run(announce)
    except Stopped as stop:
        return stop.status
    except BrokenPipeError:
        # the reader went while a line was written: nothing more can be shown, nor flushed at
        # exit (which would print "Exception ignored ... BrokenPipeError")
        _to_devnull(tail.output.fd)
        return 0
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _to_devnull(fd: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


class _Tap:
    """One tail's connection, tap queue and consumer."""

    def __init__(self, broker: BrokerConfig, tail: Tail, name: str, buffer: int) -> None:
        self.broker = broker
        self.tail = tail
        self.queue = tap_queue(broker, name, buffer)
        self.buffer = buffer
        self.url = redact(broker.url)
        self._arrived: list[Record] = []
        #: True while inside the broker client: a signal there may leave a frame half read
        self._in_broker = False

    def run(self, announce: Callable[[str], None] | None) -> int:
        try:
            conn = connection.connected(self.broker)
        except LogfanError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the user's to read
            raise BrokerError(
                f"cannot connect to the broker at {self.url}: {error_text(exc)}"
            ) from None
        channel = None
        try:
            self._in_broker = True
            try:
                channel = topology.declare_exchange(conn, self.broker)
                self.queue.maybe_bind(channel).declare()
                Consumer(
                    channel,
                    queues=[self.queue],
                    on_message=self._on_delivery,
                    prefetch_count=PREFETCH,
                    no_ack=False,
                    auto_declare=False,
                ).consume()
            except Exception as exc:  # noqa: BLE001 - a refusal is one sentence, not a traceback
                raise BrokerError(
                    f"the broker at {self.url} refused the tap queue {self.queue.name}: "
                    f"{error_text(exc)}"
                ) from None
            self._in_broker = False
            if announce is not None:
                announce(
                    f"showing the lines of exchange {self.broker.exchange} at "
                    f"{connection.describe(conn)} through queue {self.queue.name}, which keeps "
                    f"the newest {self.buffer} messages while this output is slow; Ctrl-C stops"
                )
            self._serve(conn)
        finally:
            self._close(conn, channel)
        return 0

    def _on_delivery(self, delivery: Any) -> None:
        delivery.ack()  # at once: a view, not a sink (the broker sends PREFETCH ahead at most)
        try:
            self._arrived += decode_delivery(delivery)
        except Exception as exc:  # noqa: BLE001 - decode never raises; if it does, show the body
            text = f"undecodable ({exc!r}): {delivery.body!r}"
            self._arrived.append(Record(message=text, timestamp=now_timestamp()))

    def _serve(self, conn: Connection) -> None:
        embedded = connection.is_embedded(conn)
        lost = (*conn.connection_errors, *conn.channel_errors, OSError)
        while not self.tail.done:
            self._in_broker = True
            try:
                conn.drain_events(timeout=IDLE_WAIT)
            except TimeoutError:
                pass
            except lost as exc:
                raise BrokerError(f"lost the broker at {self.url}: {error_text(exc)}") from None
            try:
                if not embedded:
                    conn.heartbeat_check()
            except lost as exc:
                raise BrokerError(f"lost the broker at {self.url}: {error_text(exc)}") from None
            self._in_broker = False
            arrived, self._arrived = self._arrived, []
            try:
                self.tail.show(arrived)
            except BrokenPipeError:
                raise
            except OSError as exc:  # a full disk, a terminal gone with EIO: not the broker's
                raise LogfanError(f"cannot write the lines: {exc.strerror or exc}") from None
            if self.tail.output.gone():
                return

    def _close(self, conn: Connection, channel: Any) -> None:
        """Delete the tap queue and close the connection, whatever stopped the tail."""
        if self._in_broker and not connection.is_embedded(conn):
            # stopped inside the AMQP client, maybe half way through a frame: drop the socket;
            # RabbitMQ deletes an exclusive queue when its connection goes
            conn.collect()
            return
        try:
            if channel is not None:
                channel.queue_delete(self.queue.name)
            conn.release()
        except Exception:  # noqa: BLE001 - the broker went: it deletes the queue with the connection
            conn.collect()


def stderr_announce(text: str) -> None:
    """Tell the person at the terminal what is shown, on stderr (stdout is the lines)."""
    print(f"logfan tail: {text}", file=sys.stderr, flush=True)
