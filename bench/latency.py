"""Latency: one line every 100 ms into a long-running publisher pipe, until visible in a file.

The bench writes a numbered line into the publisher's stdin (``logfan emit`` with its default
linger, or the tutorial's pika publisher), noting the time; a follower thread reads the sink's
file as soon as inotify says it was written (polling every millisecond where inotify is not
available) and notes when each line appears. A first warm-up line (not counted)
lets the publisher connect before the clock matters. Reported: p50, p99 (nearest rank) and max.
"""

from __future__ import annotations

import ctypes
import math
import os
import select
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import benchkit as bk
import throughput

INTERVAL = 0.1
POLL = 0.001
IN_MODIFY = 0x002
_LIBC = ctypes.CDLL(None, use_errno=True)


class Written:
    """Waits until a file is written to: inotify's IN_MODIFY, or a POLL-long sleep without it."""

    def __init__(self, path: Path) -> None:
        self._ifd = int(_LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC))
        if self._ifd >= 0 and _LIBC.inotify_add_watch(self._ifd, bytes(path), IN_MODIFY) < 0:
            os.close(self._ifd)
            self._ifd = -1

    def wait(self) -> None:
        if self._ifd < 0:
            time.sleep(POLL)
            return
        if select.select([self._ifd], [], [], 0.05)[0]:
            os.read(self._ifd, 4096)

    def close(self) -> None:
        if self._ifd >= 0:
            os.close(self._ifd)


@dataclass
class Latency:
    """Seconds from the write into the pipe until the line was readable in the file."""

    name: str
    samples: list[float] = field(default_factory=list)
    sent: int = 0

    def percentile(self, p: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        ordered = sorted(self.samples)
        rank = max(1, math.ceil(p / 100 * len(ordered)))
        return ordered[rank - 1] * 1000

    @property
    def missing(self) -> int:
        return self.sent - len(self.samples)


class Follower(threading.Thread):
    """Reads a growing file every POLL seconds, noting when each ``probe N`` line shows up."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="follower", daemon=True)
        self.path = path
        self.seen: dict[int, float] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self.path.exists():
            if self._halt.wait(POLL):
                return
        rest = b""
        written = Written(self.path)
        with self.path.open("rb") as f:
            while not self._halt.is_set():
                chunk = f.read()
                if not chunk:
                    written.wait()
                    continue
                now = time.monotonic()
                *lines, rest = (rest + chunk).split(b"\n")
                for line in lines:
                    at = line.find(b"probe ")
                    if at >= 0:
                        self.seen.setdefault(int(line[at + 6 : at + 12]), now)
        written.close()

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _probe(seq: int) -> bytes:
    text = f"probe {seq:06d} latency line "
    return (text + "." * (bk.LINE_BYTES - 1 - len(text))).encode() + b"\n"


def measure(name: str, pipe: IO[bytes], path: Path, duration: float) -> Latency:
    """Write one probe line every INTERVAL for ``duration`` seconds; collect the delays."""
    follower = Follower(path)
    follower.start()
    fd = pipe.fileno()
    result = Latency(name)
    try:
        os.write(fd, _probe(0))  # warm-up: the publisher connects
        deadline = time.monotonic() + 60
        while 0 not in follower.seen:
            if time.monotonic() > deadline:
                raise bk.BenchError(f"{name}: the warm-up line never reached the file")
            time.sleep(0.01)
        sent: dict[int, float] = {}
        count = max(1, round(duration / INTERVAL))
        start = time.monotonic() + INTERVAL
        for seq in range(1, count + 1):
            time.sleep(max(0.0, start + (seq - 1) * INTERVAL - time.monotonic()))
            sent[seq] = time.monotonic()
            os.write(fd, _probe(seq))
        deadline = time.monotonic() + 10
        while len(follower.seen) <= count and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        follower.stop()
    result.sent = count
    result.samples = [follower.seen[s] - t for s, t in sent.items() if s in follower.seen]
    return result


def run_logfan(kind: str, workdir: Path, duration: float) -> Latency:
    """A long-running ``logfan emit`` pipe to a daemon with one file sink."""
    broker = bk.Broker(kind, workdir)
    path = workdir / f"latency-{kind}.log"
    config = bk.write_config(
        workdir / f"latency-{kind}.yaml", broker, {broker.sink_name("file"): bk.file_sink(path)}
    )
    daemon = bk.LogfanDaemon(config, workdir)
    emit: bk.Emit | None = None
    try:
        daemon.start()
        emit = bk.Emit(config, subprocess.PIPE, workdir)
        assert emit.proc.stdin is not None
        result = measure(f"logfan-{kind}", emit.proc.stdin, path, duration)
        emit.proc.stdin.close()
        emit.wait(30)
    finally:
        if emit is not None:
            bk.finish(emit.proc, timeout=5)
        daemon.stop()
        broker.cleanup()
        path.unlink(missing_ok=True)
    return result


def run_tutorial(workdir: Path, duration: float) -> Latency:
    """The tutorial publisher (one message per line) to one tutorial receiver writing a file."""
    exchange = f"bench-tutorial-{bk.run_id()}"
    path = workdir / "latency-tutorial.log"
    receivers: list[subprocess.Popen[bytes]] = []
    publisher: subprocess.Popen[bytes] | None = None
    try:
        receivers = throughput.start_receivers(exchange, [path])
        publisher = throughput.start_publisher(exchange, subprocess.PIPE)
        assert publisher.stdin is not None
        result = measure("tutorial", publisher.stdin, path, duration)
        publisher.stdin.close()
    finally:
        if publisher is not None:
            bk.finish(publisher, sig=0, timeout=10)
        for proc in receivers:
            bk.finish(proc, timeout=5)
        bk.delete_on_rabbitmq([], [exchange])
        path.unlink(missing_ok=True)
    return result
