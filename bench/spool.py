"""The embedded broker's cost per get+ack at a deep backlog, next to a shallow one (same run).

A get lists the queue's folder once per backlog, then takes names from that listing, so the cost
of one get should not grow with the number of queued messages. Prints, for a shallow backlog
(the baseline) and a deep one: the first get (which lists the folder) and the mean of 500 gets.

Usage: ``.venv/bin/python bench/spool.py [DEEP]`` (default 100,000 messages; shallow is 1,000).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from kombu import Connection, Exchange, Queue

from logfan.daemon.broker.spool.transport import Transport
from logfan.daemon.envelope import CONTENT_TYPE

SHALLOW = 1_000
GETS = 500
QUEUE = "logfan.bench"


def get_cost(root: Path, depth: int) -> tuple[float, float]:
    """Queue ``depth`` 200-byte messages; return (first get, mean of GETS gets), in seconds."""
    with Connection(transport=Transport, transport_options={"root": str(root)}) as connection:
        channel = connection.channel()
        Queue(QUEUE, exchange=Exchange("logs", type="fanout"), durable=True)(channel).declare()
        payload = channel.prepare_message(b"x" * 200, content_type=CONTENT_TYPE)
        channel._inplace_augment_message(payload, "", QUEUE)
        for _ in range(depth):
            channel._put(QUEUE, payload)
        first = time.perf_counter()
        channel.basic_get(QUEUE).ack()
        start = time.perf_counter()
        for _ in range(GETS):
            channel.basic_get(QUEUE).ack()
        end = time.perf_counter()
    return start - first, (end - start) / GETS


def main() -> None:
    deep = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    if deep <= GETS:
        sys.exit(f"the deep backlog must hold more than {GETS} messages")
    with tempfile.TemporaryDirectory(prefix="logfan-spool-bench-") as tmp:
        rows = [(depth, *get_cost(Path(tmp, str(depth)), depth)) for depth in (SHALLOW, deep)]
    print(f"{'BACKLOG':>9} {'FIRST GET':>10} {'PER GET+ACK':>12}")
    for depth, listing, per_get in rows:
        print(f"{depth:>9,} {listing * 1e3:>7.1f} ms {per_get * 1e6:>9.0f} us")
    ratio = rows[1][2] / rows[0][2]
    print(f"per get at {deep:,} / per get at {SHALLOW:,} (the baseline) = {ratio:.2f}")


if __name__ == "__main__":
    main()
