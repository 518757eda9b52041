"""``logfan emit --plain`` (one line per message) next to envelopes and next to its floor.

Each case publishes LINES lines of 100 bytes to an exchange of its own with one durable sink
queue and no daemon (the figures are the publisher's and the broker's), persistent, with
publisher confirms, and ends once the last line is confirmed:

- ``envelope``: ``logfan emit``, up to 1,000 lines per message;
- ``plain``: ``logfan emit --plain``, one message per line;
- ``floor``: py-amqp alone, one message per line with the same properties and headers and a
  window of 1,000 unconfirmed messages: what any Python publisher with these guarantees gets.

The cases alternate, RUNS times, so the machine's load moves them alike. For each it prints
lines/s (from the start of the process to its exit) and the publisher's CPU seconds per 100,000
lines. Nothing is asserted.

Usage: ``.venv/bin/python bench/plain.py [LINES] [--runs N]`` (default 100,000 lines, 3 runs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import amqp
import yaml
from benchkit import LOGFAN, RABBITMQ_URL, reap, run_id, spawn, write_lines
from kombu import Connection

CASES = ("envelope", "plain", "floor")
FLOOR_WINDOW = 1000


def floor(url: str, exchange: str, path: str) -> None:
    """Publish each line of ``path`` as emit --plain does, with nothing else around it."""
    conn = Connection(url)
    raw: amqp.Connection = conn.connection
    channel = raw.channel()
    confirmed = [0]

    def on_ack(tag: int, _multiple: bool) -> None:
        confirmed[0] = tag

    channel.events["basic_ack"].add(on_ack)
    channel.confirm_select()
    sent = 0
    headers = {"logfan-host": "bench", "logfan-pid": os.getpid(), "logfan-severity": "info"}
    with open(path, "rb") as lines:
        for line in lines:
            now = time.time_ns() // 1_000_000
            message = amqp.Message(
                line.rstrip(b"\n"),
                content_type="text/plain",
                content_encoding="utf-8",
                delivery_mode=2,
                message_id=f"floor-{sent}",
                timestamp=now // 1000,
                app_id="bench",
                application_headers={**headers, "timestamp_in_ms": now},
            )
            channel.basic_publish(message, exchange=exchange, routing_key="", mandatory=True)
            sent += 1
            while sent - confirmed[0] >= FLOOR_WINDOW:
                raw.drain_events(timeout=30)
    while confirmed[0] < sent:
        raw.drain_events(timeout=30)
    conn.close()


def run_case(case: str, lines: int, tmp: Path, path: Path) -> tuple[float, float]:
    """One case on a fresh exchange and queue: (lines/s, CPU seconds per 100,000 lines)."""
    rid = run_id()
    exchange, sink = f"bench-plain-{rid}", f"bench-plain-{rid}"
    config = tmp / f"{rid}.yaml"
    doc = {
        "broker": {"url": RABBITMQ_URL, "exchange": exchange},
        "sinks": {sink: {"type": "file", "path": str(tmp / "unused.log")}},
    }
    config.write_text(yaml.safe_dump(doc))
    with Connection(RABBITMQ_URL) as conn:  # the queue the emitter would declare, for the floor
        channel = conn.channel()
        channel.exchange_declare(exchange, "fanout", durable=False, auto_delete=False)
        channel.queue_declare(f"logfan.{sink}", durable=True, auto_delete=False)
        channel.queue_bind(f"logfan.{sink}", exchange)
    if case == "floor":
        argv = [sys.executable, __file__, "--floor", RABBITMQ_URL, exchange, str(path)]
    else:
        argv = [*LOGFAN, "emit", "-c", str(config), *(["--plain"] if case == "plain" else [])]
    try:
        with path.open("rb") as stdin:
            started = time.perf_counter()
            proc = spawn(argv, stdin=stdin)
            usage = reap(proc, block=True)
            elapsed = time.perf_counter() - started
        if usage is None or usage.returncode != 0:
            raise SystemExit(f"{case}: the publisher failed ({usage})")
        with Connection(RABBITMQ_URL) as conn:
            queued = conn.channel().queue_declare(f"logfan.{sink}", passive=True).message_count
        if case != "envelope" and queued != lines:
            raise SystemExit(f"{case}: {queued} messages queued, {lines} expected")
    finally:
        with Connection(RABBITMQ_URL) as conn:
            for queue in (f"logfan.{sink}", f"logfan.{sink}.dead"):
                conn.channel().queue_delete(queue)
            conn.channel().exchange_delete(exchange)
    return lines / elapsed, usage.cpu * 100_000 / lines


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--floor":
        floor(*sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lines", nargs="?", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="logfan-bench-plain-") as folder:
        tmp = Path(folder)
        path = write_lines(tmp / "lines.txt", args.lines)
        results: dict[str, list[tuple[float, float]]] = {case: [] for case in CASES}
        for _ in range(args.runs):
            for case in CASES:
                results[case].append(run_case(case, args.lines, tmp, path))
    print(f"{'CASE':<9} {'LINES/S (each run)':<32} CPU S PER 100,000 LINES (publisher)")
    for case, runs in results.items():
        rates = ", ".join(f"{rate:,.0f}" for rate, _ in runs)
        cpus = ", ".join(f"{cpu:.2f}" for _, cpu in runs)
        print(f"{case:<9} {rates:<32} {cpus}")


if __name__ == "__main__":
    main()
