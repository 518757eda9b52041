"""The emitter: lines from arguments or a pipe, packed into envelopes, every one confirmed.

Confirms are awaited per window, not per envelope: up to WINDOW envelopes may be published and
unconfirmed at once, so reading and encoding the next envelope overlaps the broker writing the
last one to disk. ``flush()`` waits for the rest; only confirmed lines count as sent.

With ``plain=True`` (``logfan emit --plain``) each line is a message of its own, its body the
line's UTF-8 and nothing else, as any AMQP consumer expects (the RabbitMQ tutorial's
``receive_log.py``); its metadata travels in AMQP properties and headers. The window then holds
up to PLAIN_WINDOW messages or PLAIN_WINDOW_BYTES of bodies. Confirms work the same way.
"""

from __future__ import annotations

import collections
import contextlib
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any, NamedTuple

from amqp.exceptions import AMQPError, MessageNacked
from kombu.exceptions import KombuError
from kombu.messaging import Producer

from logfan.daemon.broker import connection, topology
from logfan.daemon.broker.failure import explain
from logfan.daemon.broker.url import redact
from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.config.sink import SinkConfig
from logfan.daemon.envelope import (
    CONTENT_TYPE,
    HOST_HEADER,
    PID_HEADER,
    PLAIN_CONTENT_TYPE,
    SEVERITY_HEADER,
    TIME_HEADER,
    encode,
    timestamp_ms,
    visible,
)
from logfan.daemon.errors import EmitError

#: what a lost or refusing broker raises; a publish failing with one of these is retried.
_BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, KombuError, AMQPError, MessageNacked)
#: envelopes (up to 4,000 lines or 1 MiB each) published before the emitter waits for confirms.
WINDOW = 8
#: plain-text messages (one line each) published before the emitter waits for confirms, and the
#: most bytes of bodies they may hold (what is kept to publish again after a lost connection).
PLAIN_WINDOW = 1000
PLAIN_WINDOW_BYTES = 2 * 1024 * 1024


class Outgoing(NamedTuple):
    """One message as published: its body, how many lines it carries, and how it is labelled."""

    body: bytes
    lines: int
    content_type: str = CONTENT_TYPE
    content_encoding: str = "binary"
    headers: dict[str, Any] | None = None
    #: AMQP properties (``message_id``, ``timestamp``, ``app_id``)
    properties: dict[str, Any] | None = None


def plain_body(line: str) -> bytes:
    """A line's UTF-8; what cannot be encoded (undecodable bytes in an argument) shows as \\xNN."""
    return visible(line).encode("utf-8")


class Emitter:
    """Publishes envelopes to the exchange with publisher confirms, reconnecting on loss.

    If ``sinks`` are known (from the config) their queues are declared too, so lines published
    before the daemon's first start are kept. A publish that reaches no queue is a failure.
    With ``plain`` each line is published as a plain-text message of its own.
    """

    def __init__(
        self,
        broker_config: BrokerConfig,
        sinks: list[SinkConfig],
        *,
        tag: str,
        severity: str,
        retry_for: float = 30.0,
        say: Callable[[str], None] | None = None,
        plain: bool = False,
    ) -> None:
        self.broker_config = broker_config
        self.sinks = sinks
        self.tag = tag
        self.severity = severity
        self.retry_for = retry_for
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.confirmed = 0
        self._conn: Any = None
        self._producer: Any = None
        self._returned: str | None = None
        self._node: str | None = None
        self._lost_at: float | None = None
        self._embedded = False
        self.plain = plain
        #: how many messages, and how many bytes of them, may wait for a confirm at once.
        self._window_size = PLAIN_WINDOW if plain else WINDOW
        self._window_cap = PLAIN_WINDOW_BYTES if plain else sys.maxsize
        #: messages not yet published (or to publish again on a new connection), in order.
        self._unsent: collections.deque[Outgoing] = collections.deque()
        #: messages published and not yet confirmed, by delivery tag, and their bodies' size.
        self._window: dict[int, Outgoing] = {}
        self._window_bytes = 0
        #: plain text: this run's id and the next line's number, its message_id ``<id>-<n>``
        self._run_id = uuid.uuid4().hex
        self._sent_lines = 0
        self._stamp: tuple[str, int] | None = None
        self._app_id = plain_body(tag).decode("utf-8")
        self._tag = 0
        self._nacked = False
        self._say: Callable[[str], None] = say or (lambda text: print(text, file=sys.stderr))

    def _open(self) -> Any:
        conn = connection.connected(self.broker_config)
        try:
            # per-host sinks belong to their daemons' hosts: an emitter never declares them
            shared = [s for s in self.sinks if s.scope == "shared"]
            channel = topology.declare(conn, self.broker_config, shared)
            self._embedded = connection.is_embedded(conn)
            if self._embedded:
                if not channel.get_table(self.broker_config.exchange):
                    self._returned = "no queue is bound to the exchange (no sink ever started)"
                self._producer = Producer(channel)
            else:
                self._producer = Producer(channel, on_return=self._on_return)
                channel.events["basic_ack"].add(self._on_ack)
                channel.events["basic_nack"].add(self._on_nack)
                channel.confirm_select()
        except BaseException:
            conn.release()
            raise
        self._conn = conn
        # a new channel numbers its confirms from 1: what the old one left unconfirmed goes again
        self._unsent.extendleft(reversed(self._window.values()))
        self._window.clear()
        self._window_bytes = 0
        self._tag = 0
        self._nacked = False
        return conn

    def _on_return(self, exc: Exception, *_args: Any) -> None:
        self._returned = f"no queue is bound to the exchange ({exc})"

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # the connection is already broken
                conn.release()

    def send(self, lines: list[tuple[str, str]]) -> None:
        """Publish ``lines`` (``(timestamp, line)`` each) as one envelope, or with ``plain`` as
        one message each; wait for confirms only while the window is full.

        Raises EmitError once the broker has not confirmed for ``retry_for`` seconds, or at once
        when it refuses for a reason retrying cannot heal.
        """
        if self.plain:
            for stamp, line in lines:
                self._unsent.append(self._plain(stamp, line))
                self._pump(self._window_size)
            return
        body = encode(
            lines,
            msg_id=uuid.uuid4().hex,
            host=self.host,
            tag=self.tag,
            pid=self.pid,
            severity=self.severity,
        )
        self._unsent.append(Outgoing(body, len(lines)))
        self._pump(self._window_size)

    def _plain(self, stamp: str, line: str) -> Outgoing:
        """One line as a plain-text message: the line's time in the ``timestamp`` property
        (seconds) and the ``timestamp_in_ms`` header, the tag as ``app_id``, host, pid and
        severity in headers, and a ``message_id`` of ``<run id>-<n>``."""
        if self._stamp is None or self._stamp[0] != stamp:  # the lines of one read share it
            ms = timestamp_ms(stamp)
            if ms is None:
                ms = time.time_ns() // 1_000_000
            self._stamp = (stamp, ms)
        _, ms = self._stamp
        msg_id = f"{self._run_id}-{self._sent_lines}"
        self._sent_lines += 1
        headers = {
            TIME_HEADER: ms,
            HOST_HEADER: self.host,
            PID_HEADER: self.pid,
            SEVERITY_HEADER: self.severity,
        }
        properties = {"message_id": msg_id, "timestamp": ms // 1000, "app_id": self._app_id}
        return Outgoing(plain_body(line), 1, PLAIN_CONTENT_TYPE, "utf-8", headers, properties)

    def flush(self) -> None:
        """Wait until the broker confirmed every message sent (raises EmitError if it does not)."""
        self._pump(1)

    @property
    def unconfirmed(self) -> int:
        """Lines sent and not confirmed yet."""
        return sum(b.lines for b in self._window.values()) + sum(b.lines for b in self._unsent)

    def _pump(self, below: int) -> None:
        """Publish what is unsent, then wait until fewer than ``below`` messages are unconfirmed.

        After a lost connection every unconfirmed message is published again, in order, on the
        next one (the broker may already hold some: at-least-once). A failure that retrying
        cannot heal (a wrong login, vhost, permission or certificate) raises EmitError at once.
        """
        started = time.monotonic()
        deadline: float | None = None
        delay = 0.2
        while True:
            try:
                if self._conn is None:
                    self._connected_to(connection.describe(self._open()))
                while self._unsent:
                    self._publish(self._unsent[0])
                    self._unsent.popleft()
                self._await_confirms(below, started + max(self.retry_for, 1.0))
            except _BROKER_ERRORS as exc:
                self._drop()
                failure = explain(exc, self.broker_config)
                if failure.permanent:  # a wrong login, vhost, permission or certificate
                    raise EmitError(failure.reason, self.unconfirmed) from None
                self._lost(failure.reason)
                now = time.monotonic()
                # time spent waiting for confirms counts: --retry-for bounds the whole wait
                deadline = deadline or started + self.retry_for
                if now + delay >= deadline:  # the next try would come too late: give up now
                    url = redact(self.broker_config.url)
                    raise EmitError(
                        f"--retry-for ({self.retry_for:g} s) leaves no time for another try at "
                        f"the broker at {url}: {failure.reason}",
                        self.unconfirmed,
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                return

    def _await_confirms(self, below: int, until: float) -> None:
        """Read the broker's confirms until fewer than ``below`` messages wait for one (and, with
        ``plain``, their bodies hold less than PLAIN_WINDOW_BYTES).

        The emitter blocks for confirms only here, while the window is full. py-amqp also reads
        any confirms already received each time it publishes (it looks for connection.blocked).
        """
        while self._window and (
            len(self._window) >= below or self._window_bytes >= self._window_cap
        ):
            left = until - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no confirm within {max(self.retry_for, 1.0):g} s")
            with contextlib.suppress(TimeoutError):
                self._conn.drain_events(timeout=min(left, 1.0))
            self._check()

    def _check(self) -> None:
        if self._returned:
            raise EmitError(f"lines would be dropped: {self._returned}", self.unconfirmed)
        if self._nacked:
            self._nacked = False
            raise MessageNacked("the broker refused to take a message (basic.nack)")

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        tags = [t for t in self._window if t <= delivery_tag] if multiple else [delivery_tag]
        for tag in tags:
            message = self._window.pop(tag, None)
            if message is not None:
                self.confirmed += message.lines
                self._window_bytes -= len(message.body)

    def _on_nack(self, _delivery_tag: int, _multiple: bool) -> None:
        self._nacked = True  # the whole window is published again on a new connection

    def _lost(self, reason: str) -> None:
        """Say once per outage that the node in use went away (a first connect says nothing)."""
        if self._node is not None and self._lost_at is None:
            self._lost_at = time.monotonic()
            self._say(
                f"logfan emit: lost the broker at {self._node} ({reason}); "
                f"retrying for up to {self.retry_for:g} s"
            )

    def _connected_to(self, node: str) -> None:
        if self._lost_at is not None:
            self._say(
                f"logfan emit: connected to {node} after {time.monotonic() - self._lost_at:.1f} s"
            )
            self._lost_at = None
        self._node = node

    def _publish(self, message: Outgoing) -> None:
        self._check()
        self._producer.publish(
            message.body,
            exchange=self.broker_config.exchange,
            routing_key="",
            content_type=message.content_type,
            content_encoding=message.content_encoding,
            delivery_mode=2,
            mandatory=not self._embedded,
            retry=False,
            timeout=max(self.retry_for, 1.0),
            headers=message.headers,
            **(message.properties or {}),
        )
        if self._embedded:  # written to the spool when publish returns: nothing to wait for
            self.confirmed += message.lines
        else:
            self._tag += 1
            self._window[self._tag] = message
            self._window_bytes += len(message.body)
        self._check()

    def close(self) -> None:
        """Close the connection."""
        self._drop()
