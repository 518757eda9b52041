"""Dead letters: lines a sink refused, kept in ``logfan.<sink>.dead``; listed and replayed."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

from kombu.messaging import Producer

from logfan.daemon.broker import connection, topology
from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.config.sink import SinkConfig
from logfan.daemon.envelope import CONTENT_TYPE, decode_delivery, encode
from logfan.sinks.base import Record

ERROR_HEADER = "x-logfan-error"


def publish_dead(producer: Producer, sink: SinkConfig, record: Record, reason: str) -> None:
    """Publish one refused line (persistent, confirmed where the broker confirms)."""
    body = encode(
        [(record.timestamp, record.message, record.severity)],
        msg_id=record.msgid,
        host=record.host,
        tag=record.tag,
        pid=int(record.pid) if record.pid.isdigit() else 0,
        severity=record.severity,
    )
    producer.publish(
        body,
        exchange="",
        routing_key=sink.dead_queue,
        content_type=CONTENT_TYPE,
        content_encoding="binary",
        delivery_mode=2,
        headers={ERROR_HEADER: reason[:1000], "x-logfan-sink": sink.name},
        retry=False,
    )


def reason_of(delivery: Any) -> str:
    """Why a dead-lettered delivery is there: logfan's own header, or the broker's x-death."""
    headers = delivery.headers or {}
    if ERROR_HEADER in headers:
        return str(headers[ERROR_HEADER])
    deaths = headers.get("x-death") or []
    if deaths and isinstance(deaths[0], dict):
        first = deaths[0]
        reason = first.get("reason")
        if isinstance(reason, bytes):
            reason = reason.decode()
        if reason == "maxlen":
            return f"dropped: queue {first.get('queue')} was full (max_queue)"
        return f"dead-lettered by the broker: {reason}"
    return "unknown"


def _drain(channel: Any, sink: SinkConfig, limit: int | None) -> Iterator[Any]:
    queue = topology.dead_queue(sink).bind(channel)
    taken = 0
    while limit is None or taken < limit:
        delivery = queue.get(no_ack=False)
        if delivery is None:
            return
        taken += 1
        yield delivery


def list_dead(
    broker_config: BrokerConfig, sink: SinkConfig, limit: int | None = None
) -> list[tuple[Record, str]]:
    """The dead-lettered lines of ``sink`` with their reasons; nothing is removed."""
    out: list[tuple[Record, str]] = []
    with connection.connected(broker_config) as conn:
        channel = topology.declare(conn, broker_config, [sink])
        for delivery in _drain(channel, sink, limit):
            reason = reason_of(delivery)
            records = decode_delivery(delivery, sink.host)
            out.extend((record, reason) for record in records)
        # Closing the channel without acking puts every delivery back where it was.
    return out


#: AMQP properties a replayed message keeps: a foreign line takes its time, tag and msgid from
#: them (logfan's own envelopes carry those in the body). Not user_id: RabbitMQ refuses one that
#: is not the publishing user's; not expiration: the line would expire again.
KEPT_PROPERTIES = ("timestamp", "app_id", "message_id", "correlation_id", "type")


def _kept_properties(properties: Mapping[str, Any]) -> dict[str, Any]:
    return {k: properties[k] for k in KEPT_PROPERTIES if properties.get(k) is not None}


def replay_dead(broker_config: BrokerConfig, sink: SinkConfig, limit: int | None = None) -> int:
    """Move dead-lettered messages back to the sink's own queue only; returns how many lines.

    Each message is published (confirmed) to ``logfan.<sink>`` before it is acknowledged in the
    dead-letter queue, so a crash in between duplicates a line, never loses it.
    """
    lines = 0
    with connection.connected(broker_config, transport_options={"confirm_publish": True}) as conn:
        channel = topology.declare(conn, broker_config, [sink])
        producer = Producer(channel)
        for delivery in _drain(channel, sink, limit):
            headers = {
                k: v for k, v in (delivery.headers or {}).items() if not str(k).startswith("x-")
            }
            headers["x-logfan-replayed-at"] = int(time.time())
            body, encoding = delivery.body, delivery.content_encoding or "binary"
            if isinstance(body, str):  # py-amqp decoded it with its content_encoding
                body = body.encode(encoding)
            producer.publish(
                body,
                exchange="",
                routing_key=sink.queue,
                content_type=delivery.content_type,
                content_encoding=encoding,
                delivery_mode=2,
                headers=headers,
                retry=False,
                **_kept_properties(delivery.properties),
            )
            delivery.ack()
            lines += len(decode_delivery(delivery))
    return lines
