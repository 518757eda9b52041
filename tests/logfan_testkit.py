"""Test helpers: real daemons as subprocesses, real sockets, polling without timed asserts."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from kombu import Exchange
from kombu.messaging import Producer
from tail_caught_up import watched_inodes

#: the repository's root folder (conf/, deploy/, bench/ are under it).
REPO = Path(__file__).resolve().parents[1]
RABBITMQ_URL = os.environ.get("LOGFAN_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
LOGFAN = [sys.executable, "-m", "logfan.daemon.cli"]


def wait_for(predicate: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true; fail the test (not time it) if it never becomes true."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    if not predicate():
        pytest.fail(f"gave up waiting for {what} after {timeout} s")


def tail_f(path: Path, stdout: IO[bytes], stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    """GNU `tail -n +1 -F path`, returned once it watches the file: tail prints what the file
    holds before it sets up inotify, and a rename in between makes it leave the file unread
    ("has been replaced"; seen in CI: a line missed)."""
    tail = subprocess.Popen(["tail", "-n", "+1", "-F", str(path)], stdout=stdout, stderr=stderr)
    inode = path.stat().st_ino
    try:
        wait_for(lambda: inode in watched_inodes(tail.pid), 20, "tail -F to watch the file")
    except BaseException:
        tail.kill()
        tail.wait()
        raise
    return tail


def read_lines(path: Path) -> list[str]:
    """The complete lines of ``path`` (none if it does not exist yet)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.decode("utf-8").split("\n")[:-1]


def run_logfan(*args: str, stdin: bytes | None = None, timeout: float = 120, **kw: Any) -> Any:
    """Run one ``logfan`` command to completion."""
    return subprocess.run(
        [*LOGFAN, *args], input=stdin, capture_output=True, timeout=timeout, check=False, **kw
    )


def log_events(daemon: Daemon, event: str) -> list[dict[str, Any]]:
    """The daemon's JSON log records whose event is ``event``."""
    out = []
    for line in daemon.logs().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == event:
            out.append(record)
    return out


class Daemon:
    """``logfan run`` as a real subprocess; stdout (the console sink) and stderr go to files.

    ``log_level`` is its ``--log-level``; ``env`` is added to this process's environment.
    """

    def __init__(
        self,
        config: Path,
        workdir: Path,
        *,
        log_level: str = "info",
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.workdir = workdir
        self.log_level = log_level
        self.env = env
        self.stdout = workdir / f"daemon-{uuid.uuid4().hex[:6]}.out"
        self.stderr = self.stdout.with_suffix(".err")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Daemon:
        argv = [*LOGFAN, "run", "-c", str(self.config), "--log-format", "json"]
        with self.stdout.open("ab") as out, self.stderr.open("ab") as err:
            self.proc = subprocess.Popen(
                [*argv, "--log-level", self.log_level],
                stdout=out,
                stderr=err,
                cwd=self.workdir,
                env=None if self.env is None else {**os.environ, **self.env},
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def workers(self) -> list[int]:
        """Process ids of the daemon's sink workers (its child processes)."""
        assert self.proc is not None
        return process_tree(self.proc.pid)[1:]

    def kill(self) -> int:
        """SIGKILL the supervisor and every worker at once (a crash, the OOM killer)."""
        assert self.proc is not None
        for pid in process_tree(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return self.proc.wait(30)

    def logs(self) -> str:
        return self.stderr.read_text(errors="replace")


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a daemon's sink workers), read from ``/proc``."""
    found, todo = [], [pid]
    while todo:
        member = todo.pop()
        found.append(member)
        for task in Path(f"/proc/{member}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in task.read_text().split()]
    return found


def rabbitmq_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            return True
    except OSError:
        return False


def suffix() -> str:
    """A short random suffix so queues of different tests never meet on the shared broker."""
    return uuid.uuid4().hex[:8]


def write_config(
    path: Path,
    url: str,
    exchange: str,
    sinks: dict[str, dict[str, Any]],
    daemon: dict[str, Any] | None = None,
    **broker: Any,
) -> Path:
    """Write a logfan YAML config; ``broker`` adds keys to its broker section."""
    doc: dict[str, Any] = {"broker": {"url": url, "exchange": exchange, **broker}}
    if daemon is not None:
        doc["daemon"] = daemon
    doc["sinks"] = sinks
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


class UdpListener:
    """A real UDP socket on 127.0.0.1 collecting datagrams in a thread."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port: int = self.sock.getsockname()[1]
        self.datagrams: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.datagrams.append(self.sock.recv(65536))
            except TimeoutError:
                continue

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class Setup:
    """One test's broker, exchange, sink names and config."""

    def __init__(self, url: str, tmp_path: Path, rabbitmq: dict[str, Any] | None) -> None:
        self.url = url
        self.tmp = tmp_path
        self.id = suffix()
        self.exchange = f"lftest-{self.id}"
        self.rabbitmq = rabbitmq
        if rabbitmq is not None:
            rabbitmq["exchanges"].append(self.exchange)

    def sink(self, name: str) -> str:
        full = f"{name}-{self.id}"
        if self.rabbitmq is not None:
            self.rabbitmq["queues"] += [f"logfan.{full}", f"logfan.{full}.dead"]
        return full

    def config(
        self,
        sinks: dict[str, dict[str, Any]],
        name: str = "logfan.yaml",
        daemon: dict[str, Any] | None = None,
        **broker: Any,
    ) -> Path:
        return write_config(self.tmp / name, self.url, self.exchange, sinks, daemon, **broker)

    def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (the broker's own figure)."""
        from logfan.daemon.broker.connection import connect
        from logfan.daemon.config.loader import BrokerConfig

        with connect(BrokerConfig(url=self.url, exchange=self.exchange)) as conn:
            return int(conn.channel().queue_declare(queue=queue, passive=True).message_count)

    def publish_raw(self, body: bytes, queue: str | None = None, **props: Any) -> None:
        """Publish like any third-party AMQP client would (straight into ``queue`` if given)."""
        self.publish_many([body], queue, **props)

    def publish_many(self, bodies: list[bytes], queue: str | None = None, **props: Any) -> None:
        """Publish each body as one message over one connection: to the exchange, or through
        the default exchange straight into ``queue``."""
        from logfan.daemon.broker.connection import connect
        from logfan.daemon.config.loader import BrokerConfig

        broker = BrokerConfig(url=self.url, exchange=self.exchange)
        exchange = Exchange(self.exchange, type="fanout", durable=False) if queue is None else ""
        with connect(broker) as conn:
            producer = Producer(conn.channel())
            for body in bodies:
                producer.publish(body, exchange=exchange, routing_key=queue or "", **props)


def tally(sink: str, sent: list[str], got: list[str]) -> tuple[int, int, int]:
    """Print and return ``(delivered, lost, duplicated)`` of ``got`` against ``sent``."""
    want = set(sent)
    unique = set(got) & want
    lost = len(want - unique)
    duplicated = len(got) - len(set(got))
    print(
        f"sink {sink}: sent={len(sent)} delivered={len(unique)} lost={lost} "
        f"duplicated={duplicated} unexpected={len(set(got) - want)}"
    )
    return len(unique), lost, duplicated


class TcpSyslogListener:
    """A real TCP syslog receiver (RFC 6587 octet counting) that can be closed and reopened.

    With ``reading=False`` it accepts connections and reads nothing until ``read()``; with a
    small ``rcvbuf`` its kernel then takes (and acknowledges) only a few KiB of each.
    """

    def __init__(self, *, reading: bool = True, rcvbuf: int | None = None) -> None:
        self.port = 0
        self.frames: list[bytes] = []
        self.rcvbuf = rcvbuf
        self._reading = threading.Event()
        if reading:
            self._reading.set()
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self.open()

    def read(self) -> None:
        """Start reading every connection (a receiver that was not reading)."""
        self._reading.set()

    def open(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf is not None:  # inherited by the connections it accepts
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self.port = server.getsockname()[1]
        self._server = server
        self._closing = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, args=(server,), daemon=True)
        self._acceptor.start()

    def _accept(self, server: socket.socket) -> None:
        # The socket is closed by this thread only: closed from another thread while accept()
        # waits, the kernel would keep it listening and complete handshakes nobody reads.
        while not self._closing.is_set():
            ready, _, _ = select.select([server], [], [], 0.05)
            if ready:
                conn, _ = server.accept()
                self._conns.append(conn)
                thread = threading.Thread(target=self._read, args=(conn,), daemon=True)
                thread.start()
        server.close()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        self._reading.wait()
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b" " in buf:
                length, _, rest = buf.partition(b" ")
                if len(rest) < int(length):
                    break
                with self._lock:
                    self.frames.append(rest[: int(length)])
                buf = rest[int(length) :]

    def close(self) -> None:
        """Stop listening and drop every connection: the target is down."""
        if self._server is not None:
            self._server = None
            self._closing.set()
            self._acceptor.join()
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._conns.clear()

    def messages(self) -> list[str]:
        """The MSG part of every RFC 5424 frame received so far."""
        with self._lock:
            frames = list(self.frames)
        return [f.split(b" ", 7)[7].decode() if f.count(b" ") >= 7 else "" for f in frames]


def feed(proc: subprocess.Popen[bytes], lines: list[str], chunk: int, pause: float) -> None:
    """Write ``lines`` to ``proc``'s stdin in chunks with pauses, so a stream spans a fault."""
    assert proc.stdin is not None
    for i in range(0, len(lines), chunk):
        proc.stdin.write(("\n".join(lines[i : i + chunk]) + "\n").encode())
        proc.stdin.flush()
        time.sleep(pause)
    proc.stdin.close()


def assert_cut(line: str, original: str, limit: int) -> None:
    """``line`` is ``original`` cut to ``limit`` bytes, marker included, as much kept as fits."""
    kept, _, tail = line.rpartition("...[truncated ")
    assert original.startswith(kept)
    cut = len(original.encode()) - len(kept.encode())
    assert tail == f"{cut} bytes]"
    assert len(line.encode()) <= limit
    assert limit - len(line.encode()) < 4 + 1, "no more than a character (or a digit) of slack"


def as_nobody(call: Callable[[], object]) -> tuple[str, str]:
    """``call()`` in a child process running as the user nobody: its result and its stderr."""
    nobody = pwd.getpwnam("nobody")
    result_r, result_w = os.pipe()
    err_r, err_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child reports through the pipes and never returns into pytest
        try:
            os.dup2(err_w, 2)
            sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115 - the child's own stderr
            os.setgroups([])
            os.setgid(nobody.pw_gid)
            os.setuid(nobody.pw_uid)
            os.write(result_w, str(call()).encode())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent as text
            os.write(result_w, f"raised {exc!r}".encode())
        finally:
            sys.stderr.flush()
            os._exit(0)
    os.close(result_w)
    os.close(err_w)
    with os.fdopen(result_r, "rb") as result, os.fdopen(err_r, "rb") as err:
        out = result.read().decode(), err.read().decode()
    os.waitpid(pid, 0)
    return out
