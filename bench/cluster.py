"""Throughput through a three-node RabbitMQ cluster (quorum queues) next to a single node.

Each run: a ``logfan run`` daemon with two file sinks, then ``logfan emit`` reading N numbered
lines from a file; timed from the emitter's start until both files hold every line (and, a
second figure, until the emitter exited 0: every line confirmed by the broker). The same input
goes through:

- a single node, classic queues (logfan's default);
- a single node, quorum queues (the queue type alone, without replication over the network);
- a three-node cluster, quorum queues (three replicas; what a cluster deployment runs), with
  ``broker.url`` listing the three nodes.

    .venv/bin/python bench/cluster.py                 # starts its own nodes with deploy/cluster.sh
    .venv/bin/python bench/cluster.py --lines 20000 --single URL --cluster URL1 URL2 URL3

Without URLs the nodes are started by ``deploy/cluster.sh`` (a one-node "cluster", then the
three-node cluster, one after the other so they never share the CPU), on free ports in a
temporary folder, and destroyed afterwards. Every node gets the script's settings (one
scheduler, no busy waiting), so the figures compare like with like. Nothing asserts a speed.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_SH = ROOT / "deploy" / "cluster.sh"
LOGFAN = [sys.executable, "-m", "logfan.daemon.cli"]
PORT_RANGE = (20000, 22700)  # below the ephemeral range, as the tests' nodes


class BenchError(Exception):
    """A run could not complete (a process failed, a sink never got its lines)."""


@dataclass
class Result:
    """One run: where, which queue type, how many lines, how long."""

    target: str
    queue_type: str
    lines: int
    #: emitter start until both sinks' files hold every line.
    seconds: float
    #: emitter start until it exited 0 (every line confirmed by the broker).
    emit_seconds: float

    @property
    def rate(self) -> float:
        """Lines per second, end to end."""
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    @property
    def emit_rate(self) -> float:
        """Lines per second the broker confirmed to the emitter."""
        return self.lines / self.emit_seconds if self.emit_seconds > 0 else 0.0


def write_input(path: Path, lines: int) -> Path:
    """``lines`` numbered log-like lines of 100 bytes each."""
    with path.open("w") as out:
        for i in range(lines):
            head = f"{i:010d} GET /api/v1/items/{i % 9973:05d} status=200 ms=12 "
            out.write(head + "x" * (99 - len(head)) + "\n")
    return path


def count_lines(path: Path) -> int:
    """Complete lines in ``path`` (0 if it does not exist yet)."""
    try:
        with path.open("rb") as f:
            return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
    except FileNotFoundError:
        return 0


def delete_queues(url: str, queues: Sequence[str], exchange: str) -> None:
    """Best effort: what a run declared (the daemon's queues, their dead-letter queues)."""
    from kombu import Connection

    with contextlib.suppress(Exception), Connection(url, connect_timeout=5) as conn:
        for name in queues:
            with contextlib.suppress(Exception):
                conn.channel().queue_delete(name)
        with contextlib.suppress(Exception):
            conn.channel().exchange_delete(exchange)


def _connected_sinks(log: Path) -> int:
    try:
        text = log.read_text(errors="replace")
    except FileNotFoundError:
        return 0
    return text.count('"consumer connected"')


def _emit_failed(emit: subprocess.Popen[bytes]) -> BenchError:
    assert emit.stderr is not None
    text = emit.stderr.read().decode(errors="replace")
    return BenchError(f"logfan emit exited {emit.returncode}: {text}")


def measure(
    target: str, urls: Sequence[str], queue_type: str, *, source: Path, lines: int, workdir: Path
) -> Result:
    """``logfan emit < source`` into a daemon with two file sinks on ``urls``; timed."""
    run = secrets.token_hex(4)
    exchange = f"bench-cluster-{run}"
    files = [workdir / f"{run}-a.log", workdir / f"{run}-b.log"]
    sinks = {f"bench-{run}-{x}": f for x, f in zip("ab", files, strict=True)}
    config = workdir / f"{run}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "broker": {"url": list(urls), "exchange": exchange, "queue_type": queue_type},
                "daemon": {"status_file": str(workdir / f"{run}.status.json")},
                "sinks": {
                    name: {"type": "file", "path": str(path), "format": "{message}"}
                    for name, path in sinks.items()
                },
            }
        )
    )
    log = workdir / f"{run}.daemon.log"
    with log.open("wb") as err:
        daemon = subprocess.Popen(
            [*LOGFAN, "run", "-c", str(config), "--log-format", "json"],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while _connected_sinks(log) < len(sinks):
            if daemon.poll() is not None or time.monotonic() > deadline:
                raise BenchError(f"the daemon never consumed: {log.read_text()[-2000:]}")
            time.sleep(0.05)
        with source.open("rb") as stdin:
            started = time.monotonic()
            emit = subprocess.Popen(
                [*LOGFAN, "emit", "-c", str(config), "-t", "bench"],
                stdin=stdin,
                stderr=subprocess.PIPE,
            )
        emit_seconds: float | None = None
        deadline = started + max(120.0, lines / 500)
        while any(count_lines(f) < lines for f in files):
            if emit_seconds is None and emit.poll() is not None:
                emit_seconds = time.monotonic() - started
                if emit.returncode != 0:
                    raise _emit_failed(emit)
            if time.monotonic() > deadline:
                got = [count_lines(f) for f in files]
                raise BenchError(f"{target}: sinks have {got} of {lines} lines")
            time.sleep(0.01)
        seconds = time.monotonic() - started
        if emit_seconds is None:
            code = emit.wait(60)
            emit_seconds = time.monotonic() - started
            if code != 0:
                raise _emit_failed(emit)
        return Result(target, queue_type, lines, seconds, emit_seconds)
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
        queues = [q for name in sinks for q in (f"logfan.{name}", f"logfan.{name}.dead")]
        delete_queues(urls[0], queues, exchange)
        for path in files:
            path.unlink(missing_ok=True)


def compare(
    single: Sequence[str], cluster: Sequence[str], lines: int, workdir: Path
) -> list[Result]:
    """The three runs on brokers that are already up (``single``: one URL, ``cluster``: all)."""
    source = write_input(workdir / "input.txt", lines)
    run = functools.partial(measure, source=source, lines=lines, workdir=workdir)
    return [
        run("single node", single, "classic"),
        run("single node", single, "quorum"),
        run(f"{len(cluster)}-node cluster", cluster, "quorum"),
    ]


def _free_ports(count: int) -> list[str]:
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(*PORT_RANGE)
        if port in chosen:
            continue
        with socket.socket() as a, socket.socket() as b:
            try:
                a.bind(("0.0.0.0", port))  # a probe, closed at once
                b.bind(("0.0.0.0", port + 10000))  # the CLI's port (+ 10000)
            except OSError:
                continue
        chosen.append(port)
    return [str(p) for p in chosen]


@contextlib.contextmanager
def nodes(folder: Path, count: int) -> Iterator[list[str]]:
    """``count`` nodes started by ``deploy/cluster.sh`` in ``folder``; their URLs; destroyed."""
    ports = _free_ports(2 * count)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
        "LOGFAN_CLUSTER_DIR": str(folder),
        "LOGFAN_CLUSTER_NAME": f"logfan-bench-{secrets.token_hex(3)}",
        "LOGFAN_CLUSTER_NODES": str(count),
        "LOGFAN_CLUSTER_PORTS": " ".join(ports[:count]),
        "LOGFAN_CLUSTER_DIST_PORTS": " ".join(ports[count:]),
    }
    try:
        subprocess.run([str(CLUSTER_SH), "start"], env=env, check=True, stdout=subprocess.DEVNULL)
        yield [f"amqp://guest:guest@127.0.0.1:{p}//" for p in ports[:count]]
    finally:
        subprocess.run([str(CLUSTER_SH), "destroy"], env=env, check=False)


def own_nodes(lines: int, workdir: Path) -> list[Result]:
    """Start a single node, measure it, destroy it; then the same with a three-node cluster."""
    source = write_input(workdir / "input.txt", lines)
    run = functools.partial(measure, source=source, lines=lines, workdir=workdir)
    with nodes(workdir / "single", 1) as single:
        results = [run("single node", single, "classic"), run("single node", single, "quorum")]
    with nodes(workdir / "cluster", 3) as cluster:
        results.append(run("3-node cluster", cluster, "quorum"))
    return results


def table(results: Sequence[Result]) -> str:
    """The figures as a plain table."""
    rows = [("TARGET", "QUEUES", "LINES", "SECONDS", "LINES/S", "CONFIRMED LINES/S")]
    rows += [
        (
            r.target,
            r.queue_type,
            f"{r.lines}",
            f"{r.seconds:.2f}",
            f"{r.rate:,.0f}",
            f"{r.emit_rate:,.0f}",
        )
        for r in results
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the comparison and print it (and write it as JSON with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="lines per run (200000)")
    parser.add_argument("--single", metavar="URL", help="a single node already running")
    parser.add_argument("--cluster", metavar="URL", nargs="+", help="a running cluster's nodes")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if bool(args.single) != bool(args.cluster):
        parser.error("give both --single and --cluster, or neither (nodes are then started)")
    with tempfile.TemporaryDirectory(prefix="logfan-bench-cluster-") as tmp:
        if args.single:
            results = compare([args.single], args.cluster, args.lines, Path(tmp))
        else:
            results = own_nodes(args.lines, Path(tmp))
    print(table(results))
    if args.json:
        rows = [{**asdict(r), "rate": r.rate, "emit_rate": r.emit_rate} for r in results]
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
