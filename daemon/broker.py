"""Broker plumbing: a kombu connection for a URL, and the exchange and queues logfan declares."""

from __future__ import annotations

from typing import Any

from kombu import Connection, Exchange, Queue

from logfan.daemon.brokerurl import parse_broker_url
from logfan.daemon.config import BrokerConfig, SinkConfig


def connect(
    broker: BrokerConfig,
    *,
    heartbeat: int | None = None,
    transport_options: dict[str, Any] | None = None,
) -> Connection:
    """A new (not yet connected) kombu connection for ``broker``; never shared between threads."""
    parsed = parse_broker_url(broker.url)
    options = dict(transport_options or {})
    if parsed.embedded:
        from logfan.daemon.fsbroker import Transport  # noqa: PLC0415 - amqp users never load it

        options.update(root=parsed.spool, polling_interval=0.05)
        return Connection(transport=Transport, transport_options=options)
    return Connection(
        parsed.url,
        heartbeat=broker.heartbeat if heartbeat is None else heartbeat,
        connect_timeout=broker.connect_timeout,
        transport_options=options,
    )


def is_embedded(connection: Connection) -> bool:
    """True for the embedded filesystem broker (acks one by one, no heartbeats)."""
    return bool(connection.transport.driver_type == "filesystem")


def exchange(broker: BrokerConfig) -> Exchange:
    """The one fanout exchange every sink's queue is bound to.

    Not durable by default, like the classic tutorial's ``logs`` exchange, so its publishers can
    declare it too; logfan redeclares it (and every binding) on each connect, so a broker
    restart loses no routing. An existing exchange is used as it is (see ``declare``).
    """
    return Exchange(
        broker.exchange, type="fanout", durable=broker.exchange_durable, auto_delete=False
    )


def sink_queue(broker: BrokerConfig, sink: SinkConfig) -> Queue:
    """The sink's durable queue, bound to the exchange."""
    return Queue(
        sink.queue, exchange=exchange(broker), routing_key="", durable=True, auto_delete=False
    )


def dead_queue(sink: SinkConfig) -> Queue:
    """The sink's dead-letter queue: durable, bound to nothing, fed by the consumer."""
    return Queue(sink.dead_queue, exchange=Exchange(""), routing_key=sink.dead_queue, durable=True)


def declare(conn: Connection, broker: BrokerConfig, sinks: list[SinkConfig]) -> Any:
    """Declare the exchange and each sink's queue (bound) and dead-letter queue; return a channel.

    An exchange that already exists is taken as it is, whatever its durability, so logfan joins
    an existing deployment instead of failing with PRECONDITION_FAILED.
    """
    channel = conn.channel()
    try:
        exchange(broker).maybe_bind(channel).declare(passive=True)
    except conn.channel_errors:
        channel = conn.channel()  # a failed passive declare closes the channel
        exchange(broker).maybe_bind(channel).declare()
    for sink in sinks:
        sink_queue(broker, sink).maybe_bind(channel).declare()
        dead_queue(sink).maybe_bind(channel).declare()
    return channel
