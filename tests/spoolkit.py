"""The embedded broker's test helpers: connections, declarations, child-process scripts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from kombu import Connection, Consumer, Exchange, Producer, Queue

from logfan.daemon.broker.spool.transport import Transport

LOGS = Exchange("logs", type="fanout", durable=True)
CONTENT_TYPE = "application/vnd.logfan.v1+json"

#: prelude of every child process: connect to the broker rooted at argv[1]
PRELUDE = """
import json, sys, time
from kombu import Connection, Consumer, Exchange, Producer, Queue
from logfan.daemon.broker.spool.transport import Transport
conn = Connection(transport=Transport, transport_options={"root": sys.argv[1]})
ex = Exchange("logs", type="fanout", durable=True)
"""

#: publish argv[3] messages (forever if 0) of argv[4] padding bytes, as worker argv[2]
PUBLISHER = (
    PRELUDE
    + """
producer = Producer(conn.channel())
worker, count, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
i = 0
while count == 0 or i < count:
    body = json.dumps({"w": worker, "i": i, "pad": "x" * size}).encode()
    producer.publish(body, exchange=ex, routing_key="", delivery_mode=2, declare=[ex],
                     content_type="application/vnd.logfan.v1+json", content_encoding="binary")
    print(i, flush=True)
    i += 1
"""
)

#: once file argv[3] exists, declare queue argv[2] bound to the exchange (all binders race)
BINDER = (
    PRELUDE
    + """
import os
channel = conn.channel()
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.0005)
Queue(sys.argv[2], exchange=ex, durable=True)(channel).declare()
"""
)

#: publish argv[3] messages numbered from argv[2] * argv[3], then say "done" (the test declares)
COUNTER = (
    PRELUDE
    + """
producer = Producer(conn.channel())
first, count = int(sys.argv[2]) * int(sys.argv[3]), int(sys.argv[3])
for i in range(first, first + count):
    producer.publish(str(i).encode(), exchange=ex, routing_key="", content_type="text/plain",
                     content_encoding="binary")
conn.release()
print("done", flush=True)
"""
)

#: like COUNTER from 0, but SIGKILLed at crash point argv[4] of the first dead-lettering
CRASHER = (
    PRELUDE
    + """
import os, signal
from pathlib import Path
import logfan.daemon.broker.spool.bounds as fsbounds
if sys.argv[4] == "before-copy":
    real_write = fsbounds.write_file
    def write_file(folder, *args):
        if folder.name.endswith(".dead"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(folder, *args)
    fsbounds.write_file = write_file
else:
    real_unlink = Path.unlink
    def unlink(self, missing_ok=False):
        if "inflight" in self.parts:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_unlink(self, missing_ok=missing_ok)
    Path.unlink = unlink
producer = Producer(conn.channel())
for i in range(int(sys.argv[3])):
    producer.publish(str(i).encode(), exchange=ex, routing_key="", content_type="text/plain",
                     content_encoding="binary")
"""
)

#: take argv[3] messages from queue argv[2] without acking them, say so, then wait to be killed
HOLDER = (
    PRELUDE
    + """
held = []
consumer = Consumer(conn.channel(), queues=[Queue(sys.argv[2], exchange=ex)],
                    on_message=held.append, prefetch_count=int(sys.argv[3]))
consumer.consume()
while len(held) < int(sys.argv[3]):
    conn.drain_events(timeout=10)
print("held", flush=True)
time.sleep(600)
"""
)


def connect(root: Path, **options: Any) -> Connection:
    return Connection(transport=Transport, transport_options={"root": str(root), **options})


def declare(conn: Connection, *names: str) -> list[Queue]:
    queues = [Queue(name, exchange=LOGS, durable=True) for name in names]
    channel = conn.channel()
    for queue in queues:
        queue(channel).declare()
    return queues


def publish(conn: Connection, body: bytes, **kwargs: Any) -> None:
    kwargs.setdefault("exchange", LOGS)
    Producer(conn.channel()).publish(
        body,
        routing_key=kwargs.pop("routing_key", ""),
        content_type=CONTENT_TYPE,
        content_encoding="binary",
        delivery_mode=2,
        declare=[LOGS],
        **kwargs,
    )


def bounded(limit: int, unit: str = "x-max-length", **extra: Any) -> dict[str, Any]:
    """The arguments logfan gives a bounded sink queue: drop-head into logfan.<sink>.dead."""
    return {
        unit: limit,
        "x-overflow": "drop-head",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "logfan.file1.dead",
        **extra,
    }


def declare_bounded(conn: Connection, arguments: dict[str, Any]) -> Queue:
    """logfan.file1 bounded by ``arguments``, logfan.file2 unbounded, both on LOGS; the DLQ."""
    channel = conn.channel()
    queue = Queue("logfan.file1", exchange=LOGS, durable=True, queue_arguments=arguments)
    queue(channel).declare()
    Queue("logfan.file2", exchange=LOGS, durable=True)(channel).declare()
    channel.queue_declare("logfan.file1.dead", durable=True, arguments={})
    return queue


def take_all(conn: Connection, queue: str) -> list[Any]:
    """Every ready message of ``queue``, in order, acked."""
    channel, got = conn.channel(), []
    while (message := channel.basic_get(queue)) is not None:
        message.ack()
        got.append(message)
    return got


def drain_until(conn: Connection, done: Callable[[], bool], limit: float = 60) -> None:
    """Deliver messages until ``done()``; gives up after ``limit`` s so a lost message fails."""
    deadline = time.monotonic() + limit
    while not done() and time.monotonic() < deadline:
        with suppress(TimeoutError):
            conn.drain_events(timeout=0.5)


def drain(conn: Connection, queues: list[Queue], count: int, ack: bool = True) -> list[Any]:
    """Consume ``count`` messages (fewer if they never come) and return them."""
    got: list[Any] = []

    def on_message(message: Any) -> None:
        got.append(message)
        if ack:
            message.ack()

    with Consumer(conn.channel(), queues=queues, on_message=on_message, prefetch_count=count):
        drain_until(conn, lambda: len(got) >= count)
    return got


def files(folder: Path, suffix: str = "") -> list[Path]:
    return sorted(p for p in folder.rglob(f"*{suffix}") if p.is_file())


def stopped(pid: int) -> bool:
    """True once process ``pid`` is stopped by a signal (state T in /proc/PID/stat)."""
    stat_line = Path(f"/proc/{pid}/stat").read_text()
    return stat_line.rsplit(")", 1)[1].split()[0] == "T"


def child(script: str, *args: object) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", script, *map(str, args)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
