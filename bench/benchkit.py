"""Shared bench helpers: input lines, process CPU and memory, sink counters, a daemon wrapper.

Every figure the benches print comes from here: CPU seconds from ``/proc/PID/stat`` (or the
rusage ``wait4`` returns for a child that exited), peak RSS from ``VmHWM`` (or ``ru_maxrss``),
lines from the sinks' own files and the UDP syslog receiver's datagram count.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

BENCH_DIR = Path(__file__).resolve().parent
#: kombu's form; ``baseline_pika`` reads the same variable.
RABBITMQ_URL = os.environ.get("LOGFAN_BENCH_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
LOGFAN = [sys.executable, "-m", "logfan.daemon.cli"]
LINE_BYTES = 100  # newline included
_TICK = os.sysconf("SC_CLK_TCK")
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)


class BenchError(Exception):
    """A bench could not complete (a process failed, a sink never got its lines)."""


def run_id() -> str:
    """A short random id: exchange and sink names of one run never meet another run's."""
    return uuid.uuid4().hex[:8]


def line_block(count: int, start: int = 0) -> bytes:
    """``count`` numbered lines of exactly LINE_BYTES bytes (newline included), log-like."""
    out = []
    for i in range(start, start + count):
        head = f"{i:010d} GET /api/v1/items/{i % 9973:05d} status=200 bytes={i % 65536:05d} ms=12 "
        out.append((head + "x" * (LINE_BYTES - 1 - len(head)))[: LINE_BYTES - 1] + "\n")
    return "".join(out).encode()


def write_lines(path: Path, count: int) -> Path:
    """Write ``count`` lines (see ``line_block``) to ``path``."""
    with path.open("wb") as out:
        for start in range(0, count, 100_000):
            out.write(line_block(min(100_000, count - start), start))
    return path


# --- processes -------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """utime + stime of a running process (all its threads), in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the daemon's sink workers), read from ``/proc``."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in task.read_text().split()]
    return found


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of ``pid`` and each running descendant, by process id."""
    out = {}
    for member in tree(pid):
        with contextlib.suppress(OSError, ValueError):
            out[member] = cpu_seconds(member)
    return out


def cpu_since(pid: int, before: dict[int, float]) -> float:
    """CPU seconds the process tree of ``pid`` used since ``before`` (from tree_cpu_seconds)."""
    now = tree_cpu_seconds(pid)
    return sum(value - before.get(member, 0.0) for member, value in now.items())


def pss_kib(pid: int) -> int:
    """Proportional set size: the process's private pages plus its share of shared ones."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise BenchError(f"no Pss in /proc/{pid}/smaps_rollup")


class TreeMemory:
    """A process tree's memory (the daemon and its workers) sampled every 50 ms in a thread.

    ``peak_pss_kib`` is the highest sum of PSS seen: each page counted once however many
    processes share it, as the kernel charges a service's cgroup. ``peak_rss_kib`` adds up each
    member's own peak RSS (``VmHWM``): an upper bound that counts every shared page once per
    process sharing it.
    """

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_pss_kib = 0
        self._hwm: dict[int, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tree-memory", daemon=True)

    def start(self) -> TreeMemory:
        self.sample()
        self._thread.start()
        return self

    def sample(self) -> None:
        total = 0
        for member in tree(self.pid):
            with contextlib.suppress(OSError, BenchError, ValueError):
                total += pss_kib(member)
                self._hwm[member] = status_kib(member, "VmHWM")
        self.peak_pss_kib = max(self.peak_pss_kib, total)

    @property
    def peak_rss_kib(self) -> int:
        return sum(self._hwm.values())

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def stop(self) -> TreeMemory:
        self._stop.set()
        self._thread.join()
        self.sample()
        return self


def status_kib(pid: int, key: str) -> int:
    """A ``kB`` figure of ``/proc/PID/status``, e.g. ``VmHWM`` (peak RSS) or ``VmRSS``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


class PeakSampler:
    """Reads ``VmHWM`` of tracked children every 10 ms in a thread, keeping the last value.

    ``ru_maxrss`` from ``wait4`` cannot be used: Linux carries the parent's peak RSS at fork
    into the child's, so every child would report at least the bench's own size. ``VmHWM``
    belongs to the address space the child got at exec; it only grows, so the last value read
    is the peak, give or take what the child allocated in its last 10 ms.
    """

    def __init__(self) -> None:
        self._last: dict[int, int] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def track(self, pid: int) -> None:
        with self._lock:
            self._last[pid] = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="peak-rss", daemon=True)
                self._thread.start()

    def forget(self, pid: int) -> int:
        """Stop tracking ``pid``; its peak RSS in KiB (0 if it was never read)."""
        with self._lock:
            return self._last.pop(pid, 0)

    def _run(self) -> None:
        while True:
            with self._lock:
                pids = list(self._last)
            for pid in pids:
                with contextlib.suppress(OSError, BenchError, ValueError):
                    value = status_kib(pid, "VmHWM")
                    with self._lock:
                        if pid in self._last:
                            self._last[pid] = value
            time.sleep(0.01)


PEAKS = PeakSampler()


def spawn(argv: Sequence[str], **kw: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen`` whose peak RSS is sampled (see PeakSampler); reap it with ``reap``."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(argv, **kw)
    PEAKS.track(proc.pid)
    return proc


@dataclass
class Usage:
    """What a finished child cost: CPU seconds (``wait4``) and peak RSS in KiB (PeakSampler)."""

    cpu: float = 0.0
    max_rss_kib: int = 0
    returncode: int | None = None


def reap(proc: subprocess.Popen[bytes], block: bool = False) -> Usage | None:
    """Collect a child's exit and rusage (None while it still runs and ``block`` is false)."""
    if proc.returncode is not None:
        return None
    pid, status, usage = os.wait4(proc.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Usage(usage.ru_utime + usage.ru_stime, PEAKS.forget(proc.pid), proc.returncode)


def finish(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 30) -> Usage:
    """Stop a child (``sig``, then SIGKILL after ``timeout``) and return its usage."""
    # Never proc.poll() or proc.send_signal(): both reap the child and its rusage is lost.
    if proc.returncode is None and sig:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = reap(proc)
        if got is not None:
            return got
        if proc.returncode is not None:  # reaped elsewhere: no rusage left to read
            return Usage(returncode=proc.returncode)
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGKILL)
    got = reap(proc, block=True)
    return got or Usage(returncode=proc.returncode)


def beam_pid(port: int = 5672) -> int | None:
    """The RabbitMQ node (beam.smp) listening on ``port``: by socket inode, else by pgrep."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(table).read_text().splitlines()[1:]:
                cols = row.split()
                if cols[3] == "0A" and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(f"socket:[{cols[9]}]")
    found = subprocess.run(["pgrep", "-x", "beam.smp"], capture_output=True, text=True, check=False)
    pids = [int(p) for p in found.stdout.split()]
    for pid in pids:
        with contextlib.suppress(OSError):
            fds = Path(f"/proc/{pid}/fd")
            if any(os.readlink(fds / fd) in inodes for fd in os.listdir(fds)):
                return pid
    return pids[0] if len(pids) == 1 else None


class CpuMeter:
    """CPU delta of a running process (e.g. the shared broker) between start() and stop()."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self._at = 0.0
        self.seconds: float | None = None

    def start(self) -> CpuMeter:
        if self.pid is not None:
            self._at = cpu_seconds(self.pid)
        return self

    def stop(self) -> float | None:
        if self.pid is not None:
            self.seconds = cpu_seconds(self.pid) - self._at
        return self.seconds


# --- what the sinks received -----------------------------------------------------------------


class LineCounter:
    """Counts the complete lines of a file that keeps growing, reading only what is new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = 0
        self.done_at: float | None = None
        self._offset = 0

    def update(self) -> int:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                while chunk := f.read(1 << 22):
                    self.lines += chunk.count(b"\n")
                    self._offset += len(chunk)
        except FileNotFoundError:
            pass
        return self.lines


class UdpCounter:
    """A UDP syslog receiver that counts datagrams in a thread; drops come from /proc/net/udp.

    The receive buffer is forced to 64 MiB (root may exceed rmem_max) so a burst fits.
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, 64 << 20)
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        self.rcvbuf = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        self._inode = str(os.fstat(self.sock.fileno()).st_ino)
        self.count = 0
        self.last_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-counter", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        # Blocking, no timeout: one system call per datagram (a timeout adds a poll() to each).
        # close() wakes it with an empty datagram.
        buf = bytearray(65536)
        recv = self.sock.recv_into
        while True:
            try:
                got = recv(buf)
            except OSError:
                return
            if not got and self._stop.is_set():
                return
            self.count += 1
            self.last_at = time.monotonic()

    def cpu_seconds(self) -> float:
        """CPU time the receiving thread used so far."""
        ident = self._thread.ident
        if ident is None or not self._thread.is_alive():
            return 0.0
        return time.clock_gettime(time.pthread_getcpuclockid(ident))

    def drops(self) -> int:
        """Datagrams the kernel dropped for this socket (its receive buffer was full)."""
        for row in Path("/proc/net/udp").read_text().splitlines()[1:]:
            cols = row.split()
            if cols[9] == self._inode:
                return int(cols[-1])
        return 0

    def close(self) -> None:
        self._stop.set()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
            waker.sendto(b"", ("127.0.0.1", self.port))
        self._thread.join()
        self.sock.close()


class TcpCounter:
    """A TCP syslog receiver for LF-framed messages: counts lines in a thread (any number of
    connections, one after another or at once). It reads in 1 MiB chunks and counts newlines in
    C, far faster than any sender here writes: it is never the bottleneck."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.port: int = self.server.getsockname()[1]
        self.count = 0
        self.last_at: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._accept, name="tcp-accept", daemon=True)]
        self._threads[0].start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            reader = threading.Thread(target=self._read, args=(conn,), daemon=True)
            self._threads.append(reader)
            reader.start()

    def _read(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        buf = bytearray(1 << 20)
        view = memoryview(buf)
        with conn:
            while not self._stop.is_set():
                try:
                    got = conn.recv_into(buf)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not got:
                    return
                lines = view[:got].tobytes().count(b"\n")
                with self._lock:
                    self.count += lines
                    self.last_at = time.monotonic()

    def drops(self) -> int:
        """TCP loses nothing."""
        return 0

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()
        self.server.close()


#: the third destination of a throughput shape: a file, UDP syslog or TCP syslog.
SHAPES = ("udp", "files", "tcp")


@dataclass
class Arrival:
    """When every sink had every line (or what was missing when the bench gave up)."""

    seconds: float
    udp_received: int = 0
    udp_dropped: int = 0
    complete: bool = True
    notes: list[str] = field(default_factory=list)


def wait_for_sinks(
    started: float,
    total: int,
    files: Sequence[Path],
    udp: UdpCounter | TcpCounter | None,
    *,
    timeout: float,
    on_tick: Callable[[], None] | None = None,
    idle_give_up: float = 5.0,
) -> Arrival:
    """Poll until every file has ``total`` lines and the UDP receiver got (or lost) ``total``.

    A datagram the kernel dropped never arrives: the UDP sink counts as done once received
    plus dropped reach ``total``, or when nothing arrived for ``idle_give_up`` seconds after the
    files were complete (then the missing ones are reported, not waited for).
    """
    counters = [LineCounter(p) for p in files]
    deadline = started + timeout
    while True:
        now = time.monotonic()
        if on_tick is not None:
            on_tick()
        for c in counters:
            if c.done_at is None and c.update() >= total:
                c.done_at = time.monotonic()
        files_done = all(c.done_at is not None for c in counters)
        udp_done = True
        if udp is not None:
            dropped = udp.drops()
            udp_done = udp.count + dropped >= total
            if files_done and not udp_done:
                last = udp.last_at or started
                files_at = max((c.done_at or 0.0) for c in counters) if counters else started
                udp_done = now - max(last, files_at) > idle_give_up
        if files_done and udp_done:
            break
        if now > deadline:
            got = ", ".join(f"{c.path.name}: {c.lines}" for c in counters)
            udp_got = f", udp: {udp.count}" if udp else ""
            raise BenchError(f"sinks incomplete after {timeout:.0f} s ({got}{udp_got} of {total})")
        time.sleep(0.01)
    ends = [c.done_at for c in counters if c.done_at is not None]
    arrival = Arrival(0.0)
    if udp is not None:
        arrival.udp_received, arrival.udp_dropped = udp.count, udp.drops()
        if udp.last_at is not None:
            ends.append(udp.last_at)
        missing = total - udp.count - arrival.udp_dropped
        if missing > 0:
            arrival.complete = False
            arrival.notes.append(f"udp: {missing} datagram(s) never arrived")
    arrival.seconds = max(ends) - started
    return arrival


# --- logfan ----------------------------------------------------------------------------------


def syslog_sink(port: int) -> dict[str, Any]:
    """A syslog sink sending RFC 5424 over UDP to 127.0.0.1:``port``."""
    return {"type": "syslog", "address": f"udp://127.0.0.1:{port}"}


def tcp_syslog_sink(port: int) -> dict[str, Any]:
    """A syslog sink sending RFC 5424 over TCP, LF-framed, to 127.0.0.1:``port``."""
    return {"type": "syslog", "address": f"tcp://127.0.0.1:{port}", "framing": "lf"}


def file_sink(path: Path, **options: Any) -> dict[str, Any]:
    """A file sink (default format ``{timestamp} {host} {tag}: {message}``)."""
    return {"type": "file", "path": str(path), **options}


class Broker:
    """One bench broker: RabbitMQ (unique exchange, queues deleted after) or embedded."""

    def __init__(self, kind: str, workdir: Path) -> None:
        self.kind = kind
        self.id = run_id()
        self.exchange = f"logfan-bench-{self.id}"
        self.url = RABBITMQ_URL if kind == "rabbitmq" else f"filesystem://{workdir}/spool-{self.id}"
        self.queues: list[str] = []

    def sink_name(self, name: str) -> str:
        full = f"bench-{self.id}-{name}"
        self.queues += [f"logfan.{full}", f"logfan.{full}.dead"]
        return full

    def cleanup(self) -> None:
        """Delete what this run declared on RabbitMQ (nothing to do for the embedded broker)."""
        if self.kind == "rabbitmq":
            delete_on_rabbitmq(self.queues, [self.exchange])


def delete_on_rabbitmq(queues: Sequence[str], exchanges: Sequence[str]) -> None:
    """Delete queues and exchanges (best effort: they may never have been made)."""
    import pika
    from baseline_pika import parameters

    with contextlib.closing(pika.BlockingConnection(parameters())) as conn:
        for name in queues:
            with contextlib.suppress(Exception):
                conn.channel().queue_delete(name)
        for name in exchanges:
            with contextlib.suppress(Exception):
                conn.channel().exchange_delete(name)


def write_config(
    path: Path, broker: Broker, sinks: dict[str, dict[str, Any]], **broker_options: Any
) -> Path:
    """A logfan config for ``broker`` with ``sinks`` (names as given) and any other ``broker:``
    settings (``prefetch=5000``); status file beside it."""
    doc = {
        "broker": {"url": broker.url, "exchange": broker.exchange, **broker_options},
        "daemon": {"status_file": str(path.with_suffix(".status.json"))},
        "sinks": sinks,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


class LogfanDaemon:
    """``logfan run`` as a subprocess; ``start`` returns once it sent READY=1 (sd_notify)."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.stderr = workdir / f"daemon-{run_id()}.err"
        self.proc: subprocess.Popen[bytes] | None = None
        self.usage: Usage | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, timeout: float = 60) -> LogfanDaemon:
        # The notification socket stays bound (and drained) while the daemon runs: with
        # systemd-python installed, a notification to a vanished socket kills the daemon.
        self._notify_path = self.workdir / f"notify-{run_id()}.sock"
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(self._notify_path))
        self._notify.settimeout(0.2)
        ready = threading.Event()
        self._drainer = threading.Thread(target=self._drain, args=(ready,), daemon=True)
        env = {**os.environ, "NOTIFY_SOCKET": str(self._notify_path)}
        env.pop("WATCHDOG_USEC", None)
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [*LOGFAN, "run", "-c", str(self.config), "--log-format", "json"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=self.workdir,
                env=env,
            )
        self._drainer.start()
        deadline = time.monotonic() + timeout
        while not ready.wait(0.1):
            self.check()
            if time.monotonic() > deadline:
                raise BenchError(f"logfan run not ready after {timeout} s: {self.tail()}")
        return self

    def _drain(self, ready: threading.Event) -> None:
        while self.proc is not None and self.proc.returncode is None:
            try:
                if b"READY=1" in self._notify.recv(4096):
                    ready.set()
            except TimeoutError:
                continue
            except OSError:
                return

    def check(self) -> None:
        """Raise if the daemon has died (without reaping it)."""
        if self.proc is None:
            return
        try:
            text = Path(f"/proc/{self.proc.pid}/stat").read_text()
            dead = text[text.rindex(")") + 2] in "ZX"
        except FileNotFoundError:
            dead = True
        if dead:
            raise BenchError(f"logfan run died: {self.tail()}")

    def tail(self, lines: int = 5) -> str:
        text = self.stderr.read_text(errors="replace") if self.stderr.exists() else ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def stop(self) -> Usage:
        if self.proc is None:
            return Usage()
        if self.usage is None:
            self.usage = finish(self.proc)
            self._drainer.join()
            self._notify.close()
            self._notify_path.unlink(missing_ok=True)
        return self.usage


class Emit:
    """``logfan emit -c CONFIG -t TAG`` reading ``stdin`` (a pipe); stderr kept in a file."""

    def __init__(
        self, config: Path, stdin: int | IO[bytes] | None, workdir: Path, *, tag: str = "bench"
    ) -> None:
        self.stderr = workdir / f"emit-{run_id()}.err"
        with self.stderr.open("wb") as err:
            self.proc = spawn(
                [*LOGFAN, "emit", "-c", str(config), "-t", tag],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=err,
                cwd=workdir,
            )
        self.usage: Usage | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> None:
        """Reap the emitter if it has exited (its rusage is kept); raise if it failed."""
        if self.usage is None:
            self.usage = reap(self.proc)
            self.check()

    def wait(self, timeout: float) -> Usage:
        """Wait for the emitter to exit by itself (SIGKILL after ``timeout``)."""
        if self.usage is None:
            self.usage = finish(self.proc, sig=0, timeout=timeout)
            self.check()
        return self.usage

    def check(self) -> None:
        if self.usage is not None and self.usage.returncode != 0:
            text = self.stderr.read_text(errors="replace").strip()
            raise BenchError(f"logfan emit exited {self.usage.returncode}: {text}")
