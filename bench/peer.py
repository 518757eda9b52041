"""The peer: syslog-ng (Debian's ``syslog-ng-core``) doing the work logfan does, in the same run.

syslog-ng has no broker in its path: it reads LF-framed lines from one TCP connection and writes
each to three destinations, in the same shapes as logfan's throughput runs (two files, plus a
third: UDP syslog, a file, or TCP syslog), with flow control on, so that it reads no faster
than its slowest destination writes, as logfan's acknowledge-after-write does. It is timed from
the start of the sender until every destination holds every line.

The sender is ``sendfile(2)`` of the input file into the socket, in a process of its own: the
kernel copies, so it uses almost no CPU (its CPU seconds are reported next to the wall time)
and is blocked, not busy, whenever syslog-ng stops reading: it is never the bottleneck.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import benchkit as bk
from throughput import Throughput, note_receiver

#: the sender: sendfile(2) of a file into a TCP connection, then a clean close.
SENDER = """
import os, socket, sys
path, port = sys.argv[1], int(sys.argv[2])
with socket.create_connection(("127.0.0.1", port)) as sock, open(path, "rb") as f:
    sock.sendfile(f)
    sock.shutdown(socket.SHUT_WR)
    sock.recv(1)
"""

#: each file line as logfan's file sink writes it: time, host, program, the line.
FILE_TEMPLATE = r"${ISODATE} ${HOST} ${PROGRAM}: ${MSG}\n"


def binary() -> str:
    found = shutil.which("syslog-ng") or "/usr/sbin/syslog-ng"
    if not Path(found).exists():
        raise bk.BenchError("syslog-ng is not installed (Debian: syslog-ng-core; make test)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(port: int, files: list[Path], third: str | None, third_port: int | None) -> str:
    destinations = [
        f'destination d{n} {{ file("{path}" template("{FILE_TEMPLATE}")); }};'
        for n, path in enumerate(files)
    ]
    if third == "udp":
        destinations.append(
            f'destination dnet {{ syslog("127.0.0.1" transport("udp") port({third_port})); }};'
        )
    elif third == "tcp":
        destinations.append(
            f'destination dnet {{ network("127.0.0.1" transport("tcp") port({third_port}) '
            'template("<${PRI}>1 ${ISODATE} ${HOST} ${PROGRAM} ${PID} - - ${MSG}\\n")); };'
        )
    names = [f"d{n}" for n in range(len(files))] + (["dnet"] if third else [])
    return "\n".join(
        [
            "@version: 3.35",
            "options { use_dns(no); stats_freq(0); };",
            f'source s_in {{ network(ip("127.0.0.1") port({port}) transport("tcp") '
            "flags(no-parse) log-iw-size(10000) log-fetch-limit(1000)); };",
            *destinations,
            "log { source(s_in); "
            + " ".join(f"destination({n});" for n in names)
            + " flags(flow-control); };",
            "",
        ]
    )


def run_syslog_ng(shape: str, source: Path, lines: int, workdir: Path) -> Throughput:
    """syslog-ng writing ``lines`` lines of ``source`` in ``shape`` (see bk.SHAPES)."""
    run_dir = workdir / f"syslog-ng-{shape}-{bk.run_id()}"
    run_dir.mkdir()
    files = [run_dir / f"{name}.log" for name in ("a", "b", "c")]
    counter: bk.UdpCounter | bk.TcpCounter | None = None
    if shape == "udp":
        counter = bk.UdpCounter()
    elif shape == "tcp":
        counter = bk.TcpCounter()
    if counter is not None:
        files = files[:2]
    port = _free_port()
    conf = run_dir / "syslog-ng.conf"
    conf.write_text(
        _config(port, files, shape if counter else None, counter.port if counter else None)
    )
    argv = [
        binary(),
        "-F",
        "--no-caps",
        f"--cfgfile={conf}",
        f"--persist-file={run_dir / 'persist'}",
        f"--pidfile={run_dir / 'pid'}",
        f"--control={run_dir / 'ctl'}",
    ]
    log = (run_dir / "syslog-ng.out").open("wb")
    daemon = bk.spawn(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_listening(port, daemon, run_dir)
        cpu_before = bk.cpu_seconds(daemon.pid)
        started = time.monotonic()
        sender = bk.spawn([sys.executable, "-c", SENDER, str(source), str(port)])
        arrival = bk.wait_for_sinks(
            started, lines, files, counter, timeout=max(120.0, lines / 1000)
        )
        result = Throughput(f"syslog-ng-{shape}", lines, arrival.seconds, notes=arrival.notes)
        result.cpu["syslog-ng"] = bk.cpu_seconds(daemon.pid) - cpu_before
        note_receiver(result, counter)
        sent = bk.finish(sender, sig=0, timeout=60)
        result.cpu["sender"] = sent.cpu
        result.udp_received, result.udp_dropped = arrival.udp_received, arrival.udp_dropped
    finally:
        bk.finish(daemon)
        log.close()
        if counter is not None:
            counter.close()
        shutil.rmtree(run_dir, ignore_errors=True)
    return result


def _wait_listening(port: int, daemon: subprocess.Popen[bytes], run_dir: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if bk.reap(daemon) is not None or daemon.returncode is not None:
            out = (run_dir / "syslog-ng.out").read_text(errors="replace")
            raise bk.BenchError(f"syslog-ng exited: {out}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise bk.BenchError("syslog-ng did not listen within 30 s")
