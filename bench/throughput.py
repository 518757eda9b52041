"""Throughput: N lines through logfan (RabbitMQ, embedded), the tutorial pattern, and ``tee``.

Each run feeds the same input file through ``cat FILE |`` into its publisher and is timed from
the start of the publisher until every sink has every line:

- ``logfan``: ``logfan emit`` into a daemon with two file sinks and one UDP syslog sink (a
  receiver thread counts datagrams; the kernel's drop count for its socket is read too, so a
  dropped datagram is reported, not waited for). The daemon's CPU (its supervisor and sink
  workers together) is read from ``/proc`` (ready to done), the emitter's from ``wait4``, the
  RabbitMQ node's as a delta; the daemon's memory is its processes' PSS summed.
- ``tutorial``: three pika receivers started first, then the pika publisher (one message per
  line, no confirms, non-persistent, auto-ack); see ``baseline_pika.py``.
- ``tee``: ``tee A B C >/dev/null``, the physical reference.
"""

from __future__ import annotations

import select
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import benchkit as bk


@dataclass
class Throughput:
    """One throughput run: how long, and what each process cost."""

    name: str
    lines: int
    seconds: float
    #: CPU seconds per component (daemon, emitter, broker, publisher, receivers, tee).
    cpu: dict[str, float] = field(default_factory=dict)
    #: peak RSS in KiB per component.
    peak_kib: dict[str, int] = field(default_factory=dict)
    udp_received: int | None = None
    udp_dropped: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        """Lines per second, end to end."""
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def cpu_per_million(self) -> float:
        """CPU seconds per million lines, every component together (the bench's own receiver
        apart: it is reported, not counted)."""
        return sum(s for name, s in self.cpu.items() if name not in HARNESS) * 1e6 / self.lines


class Profiler:
    """``py-spy record`` attached to a process until it exits (raw collapsed stacks)."""

    def __init__(self, pid: int, out: Path, *, subprocesses: bool = False) -> None:
        self.out = out
        self.proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("py-spy")),
                "record",
                "--nonblocking",
                *(["--subprocesses"] if subprocesses else []),
                "-p",
                str(pid),
                "-f",
                "raw",
                "-o",
                str(out),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def wait(self) -> None:
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _third_sink(
    shape: str, broker: bk.Broker, workdir: Path, kind: str
) -> tuple[bk.UdpCounter | bk.TcpCounter | None, list[Path], dict[str, Any]]:
    """The receiver (if any), the files and the third sink of ``shape``."""
    # not beside the config, whose folder the daemon watches (as /var/log is not /etc/logfan)
    out = workdir / "out"
    out.mkdir(exist_ok=True)
    files = [out / f"{kind}-{name}.log" for name in ("a", "b", "c")]
    if shape == "files":
        return None, files, {broker.sink_name("c"): bk.file_sink(files[2])}
    if shape == "tcp":
        tcp = bk.TcpCounter()
        return tcp, files[:2], {broker.sink_name("syslog"): bk.tcp_syslog_sink(tcp.port)}
    udp = bk.UdpCounter()
    return udp, files[:2], {broker.sink_name("syslog"): bk.syslog_sink(udp.port)}


def _timeout(lines: int) -> float:
    return max(120.0, lines / 1000)


#: a selection that weighs every line (severity, tag glob, an RE2 search) and keeps them all.
SELECT_TYPICAL: dict[str, object] = {
    "min_severity": "info",
    "tags": ["*"],
    "exclude_match": "status=5\\d\\d",
}
#: a selection whose expression matches in every line (one search per line, the dear case).
SELECT_EVERY_LINE: dict[str, object] = {"match": "status=2\\d\\d"}


#: CPU figures of the bench's own helpers, shown apart from what is measured
HARNESS = frozenset({"udp receiver"})


def note_receiver(result: Throughput, counter: object) -> None:
    """Add the CPU the bench's UDP receiver used to ``result`` (as part of the harness)."""
    if isinstance(counter, bk.UdpCounter):
        result.cpu["udp receiver"] = counter.cpu_seconds()


def run_logfan(
    kind: str,
    source: Path,
    lines: int,
    workdir: Path,
    profile_dir: Path | None = None,
    *,
    select: dict[str, object] | None = None,
    shape: str = "udp",
) -> Throughput:
    """``cat SOURCE | logfan emit`` to a daemon with two file sinks and a third sink: UDP
    syslog (``shape`` udp), a file (files) or TCP syslog (tcp). ``select``: the first file
    sink's selection, which must keep every line."""
    broker = bk.Broker(kind, workdir)
    udp, files, sinks = _third_sink(shape, broker, workdir, kind)
    sinks[broker.sink_name("a")] = bk.file_sink(files[0], **({"select": select} if select else {}))
    sinks[broker.sink_name("b")] = bk.file_sink(files[1])
    config = bk.write_config(workdir / f"throughput-{kind}.yaml", broker, sinks)
    daemon = bk.LogfanDaemon(config, workdir)
    profilers: list[Profiler] = []
    try:
        daemon.start()
        idle_kib = sum(bk.pss_kib(member) for member in bk.tree(daemon.pid))
        if profile_dir is not None:
            profilers.append(
                Profiler(daemon.pid, profile_dir / f"daemon-{kind}.txt", subprocesses=True)
            )
            time.sleep(1.0)  # let py-spy attach before the clock starts
        beam = bk.CpuMeter(bk.beam_pid() if kind == "rabbitmq" else None).start()
        daemon_cpu = bk.tree_cpu_seconds(daemon.pid)
        memory = bk.TreeMemory(daemon.pid).start()
        started = time.monotonic()
        cat = subprocess.Popen(["cat", str(source)], stdout=subprocess.PIPE)
        emit = bk.Emit(config, cat.stdout, workdir)
        assert cat.stdout is not None
        cat.stdout.close()
        if profile_dir is not None:
            profilers.append(Profiler(emit.pid, profile_dir / f"emitter-{kind}.txt"))

        def tick() -> None:
            emit.poll()
            daemon.check()

        arrival = bk.wait_for_sinks(
            started, lines, files, udp, timeout=_timeout(lines), on_tick=tick
        )
        result = Throughput(f"logfan-{kind}-{shape}", lines, arrival.seconds, notes=arrival.notes)
        result.cpu["daemon"] = bk.cpu_since(daemon.pid, daemon_cpu)
        note_receiver(result, udp)
        result.peak_kib |= {"daemon": memory.stop().peak_pss_kib, "daemon-idle": idle_kib}
        broker_cpu = beam.stop()
        if broker_cpu is not None:
            result.cpu["broker"] = broker_cpu
        emitted = emit.wait(60)
        result.cpu["emitter"], result.peak_kib["emitter"] = emitted.cpu, emitted.max_rss_kib
        bk.finish(cat)
        result.udp_received, result.udp_dropped = arrival.udp_received, arrival.udp_dropped
    except BaseException:
        print(f"logfan {kind} daemon log: {daemon.tail()}", file=sys.stderr)
        raise
    finally:
        daemon.stop()
        if udp is not None:
            udp.close()
        broker.cleanup()
        for profiler in profilers:
            profiler.wait()
        for path in files:
            path.unlink(missing_ok=True)
    return result


def _wait_ready(procs: list[subprocess.Popen[bytes]], timeout: float = 30) -> None:
    """Wait for each receiver's ``ready`` line."""
    deadline = time.monotonic() + timeout
    for proc in procs:
        assert proc.stdout is not None
        left = deadline - time.monotonic()
        ready, _, _ = select.select([proc.stdout], [], [], max(left, 0))
        if not ready or proc.stdout.readline().strip() != b"ready":
            raise bk.BenchError("a tutorial receiver did not get ready")


def start_receivers(exchange: str, files: list[Path]) -> list[subprocess.Popen[bytes]]:
    """One tutorial receiver per file, each bound and consuming when this returns."""
    script = str(bk.BENCH_DIR / "baseline_pika.py")
    procs = [
        bk.spawn([sys.executable, script, "receive", exchange, str(path)], stdout=subprocess.PIPE)
        for path in files
    ]
    try:
        _wait_ready(procs)
    except BaseException:
        for proc in procs:
            bk.finish(proc, timeout=5)
        raise
    return procs


def start_publisher(exchange: str, stdin: int | IO[bytes] | None) -> subprocess.Popen[bytes]:
    """The tutorial publisher reading ``stdin`` (a pipe) line by line."""
    script = str(bk.BENCH_DIR / "baseline_pika.py")
    return bk.spawn([sys.executable, script, "publish", exchange], stdin=stdin)


def run_tutorial(source: Path, lines: int, workdir: Path) -> Throughput:
    """Three pika receivers (auto-ack, exclusive queues), then ``cat SOURCE | publisher``."""
    exchange = f"bench-tutorial-{bk.run_id()}"
    files = [workdir / f"tutorial-{n}.log" for n in range(3)]
    receivers: list[subprocess.Popen[bytes]] = []
    try:
        receivers = start_receivers(exchange, files)
        beam = bk.CpuMeter(bk.beam_pid()).start()
        started = time.monotonic()
        cat = subprocess.Popen(["cat", str(source)], stdout=subprocess.PIPE)
        publisher = start_publisher(exchange, cat.stdout)
        assert cat.stdout is not None
        cat.stdout.close()
        published: list[bk.Usage] = []

        def publisher_done() -> None:
            if not published:
                got = bk.reap(publisher)
                if got is not None:
                    if got.returncode != 0:
                        raise bk.BenchError(f"tutorial publisher exited {got.returncode}")
                    published.append(got)

        arrival = bk.wait_for_sinks(
            started, lines, files, None, timeout=_timeout(lines), on_tick=publisher_done
        )
        result = Throughput("tutorial", lines, arrival.seconds)
        broker_cpu = beam.stop()
        got = [bk.finish(proc) for proc in receivers]
        pub = published[0] if published else bk.finish(publisher, sig=0, timeout=60)
        bk.finish(cat)
        result.cpu["publisher"] = pub.cpu
        result.cpu["receivers"] = sum(u.cpu for u in got)
        if broker_cpu is not None:
            result.cpu["broker"] = broker_cpu
        result.peak_kib["publisher"] = pub.max_rss_kib
        result.peak_kib["receiver"] = max(u.max_rss_kib for u in got)
    finally:
        for proc in receivers:
            bk.finish(proc, timeout=5)
        bk.delete_on_rabbitmq([], [exchange])
        for path in files:
            path.unlink(missing_ok=True)
    return result


def run_tee(source: Path, lines: int, workdir: Path) -> Throughput:
    """``cat SOURCE | tee A B C >/dev/null``: the same bytes written to three files."""
    files = [workdir / f"tee-{n}.log" for n in range(3)]
    try:
        started = time.monotonic()
        cat = subprocess.Popen(["cat", str(source)], stdout=subprocess.PIPE)
        tee = bk.spawn(["tee", *map(str, files)], stdin=cat.stdout, stdout=subprocess.DEVNULL)
        assert cat.stdout is not None
        cat.stdout.close()
        used = bk.finish(tee, sig=0, timeout=_timeout(lines))
        seconds = time.monotonic() - started
        bk.finish(cat)
        counted = [bk.LineCounter(path).update() for path in files]
        if used.returncode != 0 or any(c != lines for c in counted):
            raise bk.BenchError(f"tee exited {used.returncode}, wrote {counted} lines")
        result = Throughput("tee", lines, seconds)
        result.cpu["tee"] = used.cpu
        result.peak_kib["tee"] = used.max_rss_kib
    finally:
        for path in files:
            path.unlink(missing_ok=True)
    return result
