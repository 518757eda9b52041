"""The prefetch count really changes on a live RabbitMQ consumer (and on the embedded broker).

RabbitMQ applies basic.qos only to consumers started after it: these tests count the messages a
consumer is handed without acknowledging any, before and after ``Prefetch.apply``.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue
from kombu.messaging import Consumer, Producer
from logfan_testkit import suffix

from logfan.daemon.broker.connection import connect
from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.consume.prefetch import PREFETCH_START, Prefetch

pytestmark = [pytest.mark.rabbitmq]


def handed(conn: Connection, got: list[Any], expected: int) -> int:
    """Drain until ``expected`` messages are held (30 s at most), then half a second more, so
    that one too many would be seen; how many messages are held."""
    deadline = time.monotonic() + 30
    while len(got) < expected and time.monotonic() < deadline:
        with contextlib.suppress(socket.timeout, TimeoutError):
            conn.drain_events(timeout=1)
    with contextlib.suppress(socket.timeout, TimeoutError):
        while True:
            conn.drain_events(timeout=0.5)
    return len(got)


def start_consumer(conn: Connection, queue: Queue, prefetch: Prefetch, got: list[Any]) -> Consumer:
    """A consumer (not yet consuming) that appends every message it is handed to ``got``."""
    return Consumer(
        conn.channel(),
        queues=[queue],
        on_message=got.append,
        prefetch_count=prefetch.count,
        auto_declare=False,
    )


def fill(conn: Connection, queue: Queue, count: int, size: int) -> None:
    producer = Producer(conn.channel())
    for n in range(count):
        producer.publish(b"x" * size, routing_key=queue.name, declare=[queue], delivery_mode=1)
        assert n >= 0


def test_rabbitmq_consumer_gets_the_new_count(rabbitmq: dict[str, Any]) -> None:
    """16 messages handed at first; after apply() (single lines: the limit, 40) the restarted
    consumer is handed 40, and after a lower count (large messages) 4.

    Acking frees the old consumer's window, so the broker may hand it more until its cancel
    arrives: those reach the callback too (nothing is lost) and are counted by consumer tag.
    """
    name = f"logfan-test-prefetch-{suffix()}"
    rabbitmq["queues"].append(name)
    queue = Queue(name, Exchange(""), routing_key=name, durable=False)
    with Connection(rabbitmq["url"]) as conn:
        fill(conn, queue, 150, 100)
        prefetch = Prefetch(40)
        got: list[Any] = []
        consumer = start_consumer(conn, queue, prefetch, got)

        def by_tag() -> list[int]:
            return list(Counter(m.delivery_info["consumer_tag"] for m in got).values())

        with consumer:
            assert handed(conn, got, PREFETCH_START) == PREFETCH_START
            for message in got:
                message.ack()
            prefetch.observe(len(got), sum(len(m.body) for m in got))
            assert prefetch.due()
            prefetch.apply(consumer, embedded=False)
            handed(conn, got, len(got) + 40)
            assert by_tag()[1] == 40, by_tag()
            for message in got:
                if message.acknowledged is False:
                    message.ack()
            for _ in range(20):  # now the messages look like 1 MiB each
                prefetch.observe(20, 20 * (1 << 20))
            prefetch.apply(consumer, embedded=False)
            assert prefetch.count == 4
            handed(conn, got, len(got) + 4)
            assert by_tag()[2] == 4, by_tag()
            assert len(got) == len({m.delivery_tag for m in got}), "each message handed once"


def test_embedded_consumer_gets_the_new_count(tmp_path: Path) -> None:
    """The same on the embedded broker, where basic.qos alone changes the count."""
    broker = BrokerConfig(url=f"filesystem://{tmp_path}/spool", exchange="prefetch")
    queue = Queue("prefetch", Exchange("prefetch", type="fanout"), durable=True)
    with connect(broker) as conn:
        queue(conn.channel()).declare()
        fill(conn, queue, 60, 100)
        prefetch = Prefetch(40)
        got: list[Any] = []
        consumer = start_consumer(conn, queue, prefetch, got)
        with consumer:
            assert handed(conn, got, PREFETCH_START) == PREFETCH_START
            for message in got:
                message.ack()
            prefetch.observe(len(got), sum(len(m.body) for m in got))
            prefetch.apply(consumer, embedded=True)
            assert handed(conn, got, PREFETCH_START + 40) == PREFETCH_START + 40
