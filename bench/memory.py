"""Memory: the daemon's peak RSS draining a backlog; the emitter's streaming a large input.

- Daemon: RabbitMQ, two file sinks and one UDP syslog sink. The daemon is started once with
  nothing queued (its RSS when ready is the idle baseline) and stopped; then the backlog is
  published with ``logfan emit`` while no daemon runs; then the daemon is started again and
  timed until every sink has every line. The daemon is a supervisor and one worker process per
  sink: its memory is the peak of their PSS summed (each shared page counted once, as the
  kernel charges the service), sampled every 50 ms; the sum of each process's own peak RSS
  (``VmHWM``, shared pages counted once per process) is printed beside it.
- Emitter: ``logfan emit`` streams BYTES of lines (a feeder thread writes them into its pipe)
  to the embedded broker, where a daemon with one file sink writing to ``/dev/null`` drains
  the queue as it fills (nothing piles up on a shared RabbitMQ). Peak RSS is ``ru_maxrss``
  from ``wait4``; the baseline is the same emitter sending one line.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import benchkit as bk


@dataclass
class DrainMemory:
    """The daemon draining a backlog."""

    lines: int
    #: peak of the daemon's processes' PSS summed.
    peak_kib: int
    idle_kib: int
    seconds: float
    publish_seconds: float
    notes: list[str] = field(default_factory=list)
    #: each process's own peak RSS, summed (shared pages counted once per process).
    rss_sum_kib: int = 0


@dataclass
class EmitterMemory:
    """The emitter streaming a large input."""

    bytes_in: int
    peak_kib: int
    one_line_kib: int
    seconds: float
    cpu: float


def drain_backlog(source: Path, lines: int, workdir: Path) -> DrainMemory:
    """Publish ``lines`` with the daemon stopped, then time and measure the daemon draining."""
    broker = bk.Broker("rabbitmq", workdir)
    udp = bk.UdpCounter()
    files = [workdir / "backlog-a.log", workdir / "backlog-b.log"]
    sinks = {
        broker.sink_name("a"): bk.file_sink(files[0]),
        broker.sink_name("b"): bk.file_sink(files[1]),
        broker.sink_name("syslog"): bk.syslog_sink(udp.port),
    }
    config = bk.write_config(workdir / "backlog.yaml", broker, sinks)
    daemon = bk.LogfanDaemon(config, workdir)
    try:
        idle = bk.LogfanDaemon(config, workdir).start()
        idle_kib = sum(bk.pss_kib(member) for member in bk.tree(idle.pid))
        idle.stop()
        started = time.monotonic()
        with source.open("rb") as stdin:
            bk.Emit(config, stdin, workdir).wait(max(300.0, lines / 1000))
        published = time.monotonic() - started
        started = time.monotonic()
        daemon.start()
        memory = bk.TreeMemory(daemon.pid).start()
        timeout = max(120.0, lines / 1000)
        arrival = bk.wait_for_sinks(
            started, lines, files, udp, timeout=timeout, on_tick=daemon.check
        )
        memory.stop()
        result = DrainMemory(
            lines, memory.peak_pss_kib, idle_kib, arrival.seconds, published, arrival.notes
        )
        result.rss_sum_kib = memory.peak_rss_kib
    finally:
        daemon.stop()
        udp.close()
        broker.cleanup()
        for path in files:
            path.unlink(missing_ok=True)
    return result


def _feed(pipe: subprocess.Popen[bytes], total: int) -> None:
    """Write ``total`` bytes of lines into the emitter's stdin, then close it."""
    assert pipe.stdin is not None
    block = bk.line_block(10_000)
    sent = 0
    try:
        while sent < total:
            chunk = block[: total - sent]
            pipe.stdin.write(chunk)
            sent += len(chunk)
    except BrokenPipeError:
        pass  # the emitter failed: its exit status says why
    finally:
        with contextlib.suppress(BrokenPipeError):
            pipe.stdin.close()


def emitter_stream(total_bytes: int, workdir: Path) -> EmitterMemory:
    """``logfan emit`` on ``total_bytes`` of input to the embedded broker, drained to /dev/null."""
    broker = bk.Broker("embedded", workdir)
    config = bk.write_config(
        workdir / "stream.yaml",
        broker,
        {broker.sink_name("null"): bk.file_sink(Path("/dev/null"))},
    )
    daemon = bk.LogfanDaemon(config, workdir)
    try:
        daemon.start()
        one = bk.Emit(config, subprocess.PIPE, workdir)
        _feed(one.proc, bk.LINE_BYTES)
        one_line = one.wait(60)
        emit = bk.Emit(config, subprocess.PIPE, workdir)
        started = time.monotonic()
        feeder = threading.Thread(target=_feed, args=(emit.proc, total_bytes), daemon=True)
        feeder.start()
        used = emit.wait(max(300.0, total_bytes / 1e6))
        seconds = time.monotonic() - started
        feeder.join()
    finally:
        daemon.stop()
    return EmitterMemory(total_bytes, used.max_rss_kib, one_line.max_rss_kib, seconds, used.cpu)
