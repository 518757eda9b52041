"""The emitter: lines from arguments or a pipe, batched into envelopes, every one confirmed."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
import uuid
from collections.abc import Callable
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
        say: Callable[[str], None] | None = None,
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
        self._say: Callable[[str], None] = say or (lambda text: print(text, file=sys.stderr))

    def _open(self) -> Any:
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
        return conn

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
                    self._connected_to(redact(self._open().as_uri()))
                self._publish(body)
            except _BROKER_ERRORS as exc:
                self._drop()
                self._lost(exc)
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

    def _lost(self, exc: BaseException) -> None:
        """Say once per outage that the node in use went away (a first connect says nothing)."""
        if self._node is not None and self._lost_at is None:
            self._lost_at = time.monotonic()
            reason = redact(str(exc)) or type(exc).__name__
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
