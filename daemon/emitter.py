"""The emitter: lines from arguments or a pipe, batched into envelopes, every one confirmed."""

from __future__ import annotations

import contextlib
import os
import socket
import time
import uuid
from typing import Any

from amqp.exceptions import AMQPError
from kombu.exceptions import KombuError
from kombu.messaging import Producer

from logfan.daemon import broker
from logfan.daemon.brokerurl import redact
from logfan.daemon.config import BrokerConfig, SinkConfig
from logfan.daemon.envelope import CONTENT_TYPE, encode
from logfan.daemon.errors import EmitError

#: what a lost or refusing broker raises; a publish failing with one of these is retried.
_BROKER_ERRORS: tuple[type[BaseException], ...] = (OSError, KombuError, AMQPError)


class Emitter:
    """Publishes envelopes to the exchange with publisher confirms, reconnecting on loss.

    If ``sinks`` are known (from the config) their queues are declared too, so lines published
    before the daemon's first start are kept. A publish that reaches no queue is a failure.
    """

    def __init__(
        self,
        broker_config: BrokerConfig,
        sinks: list[SinkConfig],
        *,
        tag: str,
        severity: str,
        retry_for: float = 30.0,
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

    def _open(self) -> None:
        conn = broker.connected(self.broker_config, transport_options={"confirm_publish": True})
        try:
            # per-host sinks belong to their daemons' hosts: an emitter never declares them
            shared = [s for s in self.sinks if s.scope == "shared"]
            channel = broker.declare(conn, self.broker_config, shared)
            if broker.is_embedded(conn):
                if not channel.get_table(self.broker_config.exchange):
                    self._returned = "no queue is bound to the exchange (no sink ever started)"
                self._producer = Producer(channel)
            else:
                self._producer = Producer(channel, on_return=self._on_return)
        except BaseException:
            conn.release()
            raise
        self._conn = conn

    def _on_return(self, exc: Exception, *_args: Any) -> None:
        self._returned = f"no queue is bound to the exchange ({exc})"

    def _drop(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):  # the connection is already broken
                conn.release()

    def send(self, lines: list[tuple[str, str]]) -> None:
        """Publish ``lines`` as one envelope and wait for the broker to confirm it."""
        body = encode(
            lines,
            msg_id=uuid.uuid4().hex,
            host=self.host,
            tag=self.tag,
            pid=self.pid,
            severity=self.severity,
        )
        deadline: float | None = None
        delay = 0.2
        while True:
            try:
                if self._conn is None:
                    self._open()
                self._publish(body)
            except _BROKER_ERRORS as exc:
                self._drop()
                now = time.monotonic()
                deadline = deadline or now + self.retry_for
                if now + delay >= deadline:  # the next try would come too late: give up now
                    url = redact(self.broker_config.url)
                    raise EmitError(
                        f"the broker at {url} did not confirm {len(lines)} line(s) within "
                        f"{self.retry_for:g} s: {redact(str(exc)) or type(exc).__name__}",
                        len(lines),
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self.confirmed += len(lines)
            return

    def _publish(self, body: bytes) -> None:
        if self._returned:
            raise EmitError(f"lines would be dropped: {self._returned}", 0)
        self._producer.publish(
            body,
            exchange=self.broker_config.exchange,
            routing_key="",
            content_type=CONTENT_TYPE,
            content_encoding="binary",
            delivery_mode=2,
            mandatory=not broker.is_embedded(self._conn),
            retry=False,
            timeout=max(self.retry_for, 1.0),
        )
        if self._returned:
            raise EmitError(f"lines would be dropped: {self._returned}", 0)

    def close(self) -> None:
        """Close the connection."""
        self._drop()
