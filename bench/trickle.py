"""Lag from publish to file under a steady trickle, with and without ``flush_interval``.

A consumer writes its batch when nothing more arrives within 2 ms, when the batch is full, or
when its first line has waited ``flush_interval``. A trickle that rarely pauses for 2 ms, with a
large ``prefetch``, is the case the last rule is for. One line per message is published over
RabbitMQ every 0.2 ms plus the time a publish takes (prefetch 5,000); a thread reads the file
sink's output every 2 ms.
The baseline, in the same run, is ``flush_interval: 3600`` (no bound in practice).

Usage: ``.venv/bin/python bench/trickle.py [LINES]`` (default 5,000 per case).
"""

from __future__ import annotations

import sys
import tempfile
import threading
import time
from pathlib import Path

from benchkit import Broker, LogfanDaemon, file_sink, write_config
from kombu import Connection, Exchange, Producer

from logfan.daemon.config.sink import FLUSH_INTERVAL

SPACING = 0.0002
BASELINE = 3600.0


class Reader(threading.Thread):
    """Records when each numbered line first appears in ``path`` (checked every 2 ms)."""

    def __init__(self, path: Path, count: int) -> None:
        super().__init__(daemon=True)
        self.path, self.count = path, count
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()

    def run(self) -> None:
        pos = 0
        with self.path.open("rb") as f:
            while len(self.seen) < self.count and not self.stop.wait(0.002):
                f.seek(pos)
                data = f.read()
                now = time.monotonic()
                complete = data[: data.rfind(b"\n") + 1]
                for line in complete.splitlines():
                    self.seen.setdefault(int(line), now)
                pos += len(complete)


def lags(flush: float, count: int, workdir: Path) -> list[float]:
    """Publish ``count`` lines one per message; return each line's publish-to-file lag."""
    broker = Broker("rabbitmq", workdir)
    sink = broker.sink_name("trickle")
    out = workdir / f"{sink}.log"
    sinks = {sink: file_sink(out, format="{message}", flush_interval=flush)}
    config = write_config(workdir / f"{sink}.yaml", broker, sinks, prefetch=5000)
    daemon = LogfanDaemon(config, workdir).start()
    try:
        reader = Reader(out, count)
        reader.start()
        sent: dict[int, float] = {}
        exchange = Exchange(broker.exchange, type="fanout", durable=False)
        with Connection(broker.url) as conn:
            producer = Producer(conn.channel(), exchange=exchange)
            for i in range(count):
                producer.publish(str(i).encode(), content_type="text/plain")
                sent[i] = time.monotonic()
                until = sent[i] + SPACING
                while time.monotonic() < until:
                    pass
        reader.join(60)
        reader.stop.set()
        if len(reader.seen) < count:
            sys.exit(f"only {len(reader.seen)} of {count} lines arrived: {daemon.tail()}")
        return sorted(reader.seen[i] - sent[i] for i in range(count))
    finally:
        daemon.stop()
        broker.cleanup()


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory(prefix="logfan-trickle-") as tmp:
        rows = [(flush, lags(flush, count, Path(tmp))) for flush in (BASELINE, FLUSH_INTERVAL)]
    print(f"{'FLUSH_INTERVAL':>17} {'P50 MS':>7} {'P99 MS':>7} {'MAX MS':>7}")
    for flush, got in rows:
        p50, p99 = got[len(got) // 2], got[min(len(got) - 1, int(len(got) * 0.99))]
        name = f"{flush:g} s" + (" (baseline)" if flush == BASELINE else "")
        print(f"{name:>17} {p50 * 1e3:7.0f} {p99 * 1e3:7.0f} {got[-1] * 1e3:7.0f}")


if __name__ == "__main__":
    main()
