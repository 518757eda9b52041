"""What it costs the syslog sink to count a TCP batch only once the receiver took it.

The sink's ``flush`` waits until the socket's unacknowledged bytes (SIOCOUTQ) are gone; the
baseline, measured in the same run on the same lines, is the sink that counts a batch once the
kernel holds it (``write`` alone, as before). Two receivers on loopback: one that reads as fast
as it can, and one that reads slowly (64 KiB every 10 ms, about 6 MiB/s; this kernel has no
netem, so the reader is throttled instead). Each figure is lines per second until the sink
counted the last batch, and until the receiver had read the last byte.

Usage: ``.venv/bin/python bench/tcp_ack.py [LINES]`` (default 200,000; 1,000 a batch).
"""

from __future__ import annotations

import socket
import sys
import threading
import time

from logfan.sinks.base import Options, Record
from logfan.sinks.syslog import SyslogSink

BATCH = 1000
SLOW_CHUNK = 64 * 1024
SLOW_PAUSE = 0.01


class Receiver:
    """A TCP receiver on loopback that reads (fast or slowly) and counts the messages."""

    def __init__(self, *, slow: bool) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.slow = slow
        self.read = 0
        self.done_at = 0.0
        self.expect = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn, _ = self.server.accept()
        with conn:
            while chunk := conn.recv(SLOW_CHUNK if self.slow else 1 << 20):
                self.read += chunk.count(b"\n")  # one message a line (framing: lf)
                if self.expect and self.read >= self.expect and not self.done_at:
                    self.done_at = time.perf_counter()
                if self.slow:
                    time.sleep(SLOW_PAUSE)

    def close(self) -> None:
        self.server.close()
        self._thread.join(60)


def run(lines: int, *, slow: bool, wait: bool) -> tuple[float, float]:
    """Lines/s until the sink counted the last batch, and until the receiver read it all."""
    receiver = Receiver(slow=slow)
    address = f"tcp://127.0.0.1:{receiver.port}"
    sink = SyslogSink("bench", Options("bench", {"address": address, "framing": "lf"}))
    records = [Record("x" * 80, "2026-11-27T06:12:59.123Z", "web1", "bench") for _ in range(BATCH)]
    receiver.expect = lines // BATCH * BATCH
    start = time.perf_counter()
    for _ in range(lines // BATCH):
        sink.write(records)
        if wait:
            sink.flush()
    counted = time.perf_counter() - start
    while not receiver.done_at:
        time.sleep(0.001)
    sink.close()
    receiver.close()
    return lines / counted, lines / (receiver.done_at - start)


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    print(f"{lines:,} lines of 80 bytes, {BATCH:,} a batch, TCP on loopback")
    print(f"{'RECEIVER':<9} {'SINK':<28} {'COUNTED LINES/S':>16} {'RECEIVED LINES/S':>17}")
    for slow in (False, True):
        name = "slow" if slow else "fast"
        rows = [("waits until taken", run(lines, slow=slow, wait=True))]
        rows.append(("baseline: kernel holds it", run(lines, slow=slow, wait=False)))
        for what, (counted, received) in rows:
            print(f"{name:<9} {what:<28} {counted:>16,.0f} {received:>17,.0f}")
        ratio = rows[0][1][1] / rows[1][1][1]
        print(f"{name:<9} received, waiting / baseline: {ratio:.2f}x")


if __name__ == "__main__":
    main()
