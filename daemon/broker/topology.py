"""What logfan declares on the broker: the fanout exchange, sink queues, dead-letter queues."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kombu import Connection, Exchange, Queue

from logfan.daemon.broker.connection import connected
from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.config.sink import DELIVERY_LIMIT, SinkConfig


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
    """The sink queue's arguments, from its type (``quorum``) and bound (``max_queue``).

    A full queue drops its oldest messages into the sink's dead-letter queue (``drop-head``),
    never ``reject-publish``: that would nack the whole fanout publish and make the emitter
    resend the line to every other sink too. A quorum queue also dead-letters a message
    redelivered ``DELIVERY_LIMIT`` times: a line that keeps killing its consumer.
    """
    args: dict[str, Any] = {}
    dead_letter = {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": sink.dead_queue,
    }
    if sink.queue_type == "quorum":
        args.update({"x-queue-type": "quorum", "x-delivery-limit": DELIVERY_LIMIT, **dead_letter})
    if sink.max_queue is not None or sink.max_queue_bytes is not None:
        args.update({"x-overflow": "drop-head", **dead_letter})
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
    """The sink's dead-letter queue: durable, bound to nothing, of the sink queue's type."""
    args = {"x-queue-type": "quorum"} if sink.queue_type == "quorum" else None
    return Queue(
        sink.dead_queue,
        exchange=Exchange(""),
        routing_key=sink.dead_queue,
        durable=True,
        queue_arguments=args,
    )


def mismatch_advice(broker: BrokerConfig, sink: SinkConfig) -> str:
    """What to tell a person whose queue exists with other arguments than the config's."""
    return (
        f"queue {sink.queue} exists with other arguments than the config asks for "
        f"({queue_arguments(sink) or 'none'}); logfan keeps using it as it is. To change it "
        f"(e.g. classic to quorum): stop logfan, let the queue drain (logfan status shows "
        f"QUEUED 0) or move its messages with a shovel, delete it (rabbitmqctl delete_queue "
        f"{sink.queue}), then start logfan, which declares it anew"
    )


def declare_exchange(conn: Connection, broker: BrokerConfig) -> Any:
    """Declare the exchange, or take an existing one as it is (of other durability); return a
    channel to go on with."""
    channel = conn.channel()
    try:
        exchange(broker).maybe_bind(channel).declare(passive=True)
    except conn.channel_errors:
        channel = conn.channel()  # a failed passive declare closes the channel
        exchange(broker).maybe_bind(channel).declare()
    return channel


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
    channel = declare_exchange(conn, broker)
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
        try:
            dead_queue(sink).maybe_bind(channel).declare()
        except conn.channel_errors as exc:
            if getattr(exc, "reply_code", None) != 406:
                raise
            channel = conn.channel()  # an existing dead-letter queue of another type: keep it
            if warn is not None:
                warn(
                    f"dead-letter queue {sink.dead_queue} exists with other arguments; logfan "
                    f"keeps it. To change it: `logfan dead {sink.name} --replay`, then "
                    f"rabbitmqctl delete_queue {sink.dead_queue} while logfan is stopped"
                )
    return channel


def unbind(broker_config: BrokerConfig, sink: SinkConfig) -> None:
    """Unbind a removed sink's queue so it stops filling; its backlog stays in the queue."""
    with connected(broker_config) as conn:
        conn.channel().queue_unbind(sink.queue, broker_config.exchange, routing_key="")
