"""The tutorial-pattern baseline: RabbitMQ's publish/subscribe tutorial, written for the bench.

``publish``: one pika message per stdin line to a fanout exchange (no confirms, non-persistent),
as the tutorial's ``emit_log.py`` does, but for every line of a pipe instead of one argument.
``receive``: an exclusive, server-named queue bound to the exchange, consumed with
``auto_ack=True``; each message is written to a file as one line, unbuffered (one ``write``
per message, as the tutorial's ``print`` to a terminal does). It prints ``ready`` once it
consumes, so the bench can start the publisher only when every receiver is bound.

    python bench/baseline_pika.py receive EXCHANGE FILE
    cat lines | python bench/baseline_pika.py publish EXCHANGE
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import pika

URL = os.environ.get("LOGFAN_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672//")


def parameters() -> Any:
    """pika's parameters for URL; kombu's ``...//`` (vhost ``/``) is ``.../%2F`` for pika."""
    url = URL[:-2] + "/%2F" if URL.endswith("//") else URL
    return pika.URLParameters(url)


def _channel() -> Any:
    connection = pika.BlockingConnection(parameters())
    return connection.channel()


def publish(exchange: str) -> None:
    """One message per stdin line, the newline left out (as the tutorial sends its argument)."""
    channel = _channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout")
    for line in sys.stdin.buffer:
        channel.basic_publish(exchange=exchange, routing_key="", body=line.rstrip(b"\n"))
    channel.connection.close()


def receive(exchange: str, path: str) -> None:
    """Write every message of an exclusive queue bound to ``exchange`` to ``path``."""
    channel = _channel()
    channel.exchange_declare(exchange=exchange, exchange_type="fanout")
    queue = channel.queue_declare(queue="", exclusive=True).method.queue
    channel.queue_bind(exchange=exchange, queue=queue)
    out = open(path, "ab", buffering=0)  # noqa: SIM115 - open until the process is stopped
    write = out.write

    def callback(_ch: Any, _method: Any, _properties: Any, body: bytes) -> None:
        write(body + b"\n")

    channel.basic_consume(queue=queue, on_message_callback=callback, auto_ack=True)
    print("ready", flush=True)
    channel.start_consuming()


def main() -> None:
    """``publish EXCHANGE`` or ``receive EXCHANGE FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="role", required=True)
    pub = sub.add_parser("publish")
    pub.add_argument("exchange")
    rec = sub.add_parser("receive")
    rec.add_argument("exchange")
    rec.add_argument("file")
    args = parser.parse_args()
    if args.role == "publish":
        publish(args.exchange)
    else:
        receive(args.exchange, args.file)


if __name__ == "__main__":
    main()
