"""Broker plumbing: a kombu connection for a URL, and the exchange and queues logfan declares."""

from __future__ import annotations

from collections.abc import Callable
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
    tls = parsed.url.startswith("amqps://")
    return Connection(
        parsed.url.replace("amqps://", "amqp://") if tls else parsed.url,
        heartbeat=broker.heartbeat if heartbeat is None else heartbeat,
        connect_timeout=broker.connect_timeout,
        transport_options=options,
        password=broker.secrets.password(),
        ssl=broker.secrets.ssl_options() if tls else False,
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


def queue_arguments(sink: SinkConfig) -> dict[str, Any]:
    """The sink queue's arguments: only a bound (``max_queue``) adds any.

    A full queue drops its oldest messages into the sink's dead-letter queue (``drop-head``),
    never ``reject-publish``: that would nack the whole fanout publish and make the emitter
    resend the line to every other sink too.
    """
    if sink.max_queue is None and sink.max_queue_bytes is None:
        return {}
    args: dict[str, Any] = {
        "x-overflow": "drop-head",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": sink.dead_queue,
    }
    if sink.max_queue is not None:
        args["x-max-length"] = sink.max_queue
    if sink.max_queue_bytes is not None:
        args["x-max-length-bytes"] = sink.max_queue_bytes
    return args


def sink_queue(broker: BrokerConfig, sink: SinkConfig) -> Queue:
    """The sink's durable queue, bound to the exchange."""
    return Queue(
        sink.queue,
        exchange=exchange(broker),
        routing_key="",
        durable=True,
        auto_delete=False,
        queue_arguments=queue_arguments(sink) or None,
    )


def dead_queue(sink: SinkConfig) -> Queue:
    """The sink's dead-letter queue: durable, bound to nothing, fed by the consumer."""
    return Queue(sink.dead_queue, exchange=Exchange(""), routing_key=sink.dead_queue, durable=True)


def mismatch_advice(broker: BrokerConfig, sink: SinkConfig) -> str:
    """What to tell a person whose queue exists with other arguments than the config's."""
    return (
        f"queue {sink.queue} exists with other arguments than the config asks for "
        f"({queue_arguments(sink) or 'none'}); logfan keeps using it as it is. To apply the "
        f"new settings, stop logfan, let the queue drain or move its messages, then delete it "
        f"(rabbitmqctl delete_queue {sink.queue}) and start logfan again"
    )


def declare(
    conn: Connection,
    broker: BrokerConfig,
    sinks: list[SinkConfig],
    warn: Callable[[str], None] | None = None,
) -> Any:
    """Declare the exchange and each sink's queue (bound) and dead-letter queue; return a channel.

    Whatever already exists is taken as it is: an exchange of other durability, or a queue
    declared with other arguments (``warn`` is told how to migrate), so a changed config never
    turns into a daemon that crash-loops on PRECONDITION_FAILED.
    """
    channel = conn.channel()
    try:
        exchange(broker).maybe_bind(channel).declare(passive=True)
    except conn.channel_errors:
        channel = conn.channel()  # a failed passive declare closes the channel
        exchange(broker).maybe_bind(channel).declare()
    for sink in sinks:
        queue = sink_queue(broker, sink)
        try:
            queue.maybe_bind(channel).declare()
        except conn.channel_errors as exc:
            if getattr(exc, "reply_code", None) != 406:
                raise
            channel = conn.channel()
            channel.queue_bind(sink.queue, broker.exchange, routing_key="")
            if warn is not None:
                warn(mismatch_advice(broker, sink))
        dead_queue(sink).maybe_bind(channel).declare()
    return channel


def unbind(broker_config: BrokerConfig, sink: SinkConfig) -> None:
    """Unbind a removed sink's queue so it stops filling; its backlog stays in the queue."""
    with connect(broker_config) as conn:
        conn.ensure_connection(max_retries=1, timeout=broker_config.connect_timeout)
        conn.channel().queue_unbind(sink.queue, broker_config.exchange, routing_key="")
