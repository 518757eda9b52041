"""Fault: RabbitMQ restarted mid-stream, on a private node (never the shared broker).

The emitter keeps streaming through the outage (``--retry-for``), the daemon's consumers reconnect
by themselves, and every line the emitter had confirmed reaches every sink. Duplicates are allowed
(at-least-once) but counted and printed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
from pathlib import Path
from typing import IO, Any

import pytest
import yaml
from logfan_testkit import LOGFAN, Daemon, read_lines, wait_for
from rabbitnode import SERVER, RabbitNode, rabbit_node

pytestmark = [pytest.mark.rabbitmq_node, pytest.mark.processes]

TOTAL = 30_000
CHUNK = 100
PAUSE = 0.05  # 100 lines every 50 ms: about 15 s of streaming, so the stream spans the restart
SINKS = ("a", "b")


def feed(stdin: IO[bytes], progress: dict[str, int], third: threading.Event) -> None:
    """Write TOTAL numbered lines at a steady pace; set ``third`` after a third of them."""
    try:
        for start in range(0, TOTAL, CHUNK):
            stop = min(start + CHUNK, TOTAL)
            stdin.write("".join(f"line {i:06d}\n" for i in range(start, stop)).encode())
            stdin.flush()
            progress["written"] = stop
            if stop >= TOTAL // 3:
                third.set()
            time.sleep(PAUSE)
    except OSError as exc:  # a dead emitter's pipe: reported by the test
        progress["error"] = exc.errno or -1
    finally:
        third.set()
        with contextlib.suppress(OSError):
            stdin.close()


def figures(path: Path, expected: set[str]) -> dict[str, int]:
    """sent / delivered (unique) / lost / duplicated / foreign for one sink's file."""
    lines = read_lines(path)
    unique = set(lines)
    delivered = len(unique & expected)
    return {
        "sent": len(expected),
        "delivered": delivered,
        "lost": len(expected) - delivered,
        "duplicated": sum(1 for line in lines if line in expected) - delivered,
        "foreign": len(unique - expected),
    }


def events(log_text: str) -> list[dict[str, Any]]:
    """The daemon's JSON log events (lines that are not JSON objects are skipped)."""
    out = []
    for line in log_text.splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                out.append(event)
    return out


def queued(node: RabbitNode) -> int:
    """Messages (ready and unacknowledged) left in the sinks' queues on the node."""
    listing = node.ctl("list_queues", "name", "messages", "--no-table-headers")
    total = 0
    for row in listing.stdout.splitlines():
        name, _, count = row.partition("\t")
        if name in {f"logfan.{s}" for s in SINKS} and count.strip().isdigit():
            total += int(count)
    return total


class TestBrokerRestart:
    """RabbitMQ stopped and started again while lines stream through logfan."""

    @pytest.mark.parametrize("mode", [[], ["--plain"]], ids=["envelopes", "plain"])
    def test_emitter_and_daemon_recover_and_every_confirmed_line_arrives(
        self, tmp_path: Path, daemons: list[Daemon], mode: list[str]
    ) -> None:
        """A graceful broker restart mid-stream: the emitter exits 0, the daemon is never
        restarted, each sink logs a disconnect and a reconnect, and no line is lost in any sink;
        with envelopes and with ``--plain`` (one message per line).
        """
        if not Path(SERVER).exists():
            pytest.fail(f"{SERVER} is missing (run `make test`, which installs RabbitMQ)")
        expected = {f"line {i:06d}" for i in range(TOTAL)}
        files = {name: tmp_path / f"{name}.log" for name in SINKS}
        with rabbit_node(tmp_path) as node:
            config = tmp_path / "logfan.yaml"
            config.write_text(
                yaml.safe_dump(
                    {
                        "broker": {"url": node.url, "heartbeat": 10},
                        "sinks": {
                            name: {"type": "file", "path": str(path), "format": "{message}"}
                            for name, path in files.items()
                        },
                    }
                )
            )
            daemon = Daemon(config, tmp_path).start()
            daemons.append(daemon)
            emitter_err = tmp_path / "emit.err"
            with (tmp_path / "emit.out").open("wb") as out, emitter_err.open("wb") as err:
                emitter = subprocess.Popen(
                    [
                        *LOGFAN,
                        "emit",
                        "-c",
                        str(config),
                        "-t",
                        "restart",
                        "--retry-for",
                        "120",
                        *mode,
                    ],
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=err,
                )
            assert emitter.stdin is not None
            third = threading.Event()
            progress = {"written": 0}
            writer = threading.Thread(
                target=feed, args=(emitter.stdin, progress, third), daemon=True
            )
            writer.start()
            try:
                wait_for(third.is_set, timeout=60, what="a third of the lines written")
                wait_for(
                    lambda: all(read_lines(p) for p in files.values()),
                    timeout=60,
                    what="both sinks consuming before the restart",
                )
                at_restart = progress["written"]
                node.restart()  # graceful stop, start on the same ports and data
                writer.join(120)
                wait_for(lambda: emitter.poll() is not None, timeout=120, what="emitter done")
                emitter_log = emitter_err.read_text(errors="replace")
                assert "error" not in progress, f"writing to the emitter failed: {progress}"
                assert 0 < at_restart < TOTAL, f"restart not mid-stream: {at_restart} written"
                assert emitter.returncode == 0, f"emitter gave up: {emitter_log}"

                # Every line in both files, then the queues drained (so duplicates are final).
                with contextlib.suppress(pytest.fail.Exception):  # figures below say what is lost
                    wait_for(
                        lambda: all(
                            figures(p, expected)["delivered"] == len(expected)
                            for p in files.values()
                        ),
                        timeout=60,
                        what="every line in both sinks",
                    )
                    wait_for(lambda: queued(node) == 0, timeout=30, what="sink queues drained")
                daemon_alive = daemon.proc is not None and daemon.proc.poll() is None
                stopped = daemon.stop()
            finally:
                if emitter.poll() is None:
                    emitter.kill()
                    emitter.wait(10)

        report = {name: figures(path, expected) for name, path in files.items()}
        lines = [
            f"sink {name}: sent={f['sent']} delivered={f['delivered']} lost={f['lost']} "
            f"duplicated={f['duplicated']} foreign={f['foreign']}"
            for name, f in report.items()
        ]
        print(f"broker restarted after {at_restart} of {TOTAL} lines written", *lines, sep="\n")
        summary = "; ".join(lines)
        assert daemon_alive, f"the daemon died during the restart: {summary}\n{daemon.logs()}"
        assert stopped == 0, f"the daemon did not stop cleanly after the restart: {summary}"
        for name, f in report.items():
            assert f["lost"] == 0, f"sink {name} lost lines: {summary}"
            assert f["foreign"] == 0, f"sink {name} has lines nobody sent: {summary}"

        log = events(daemon.logs())
        for name in SINKS:
            mine = [e.get("event") for e in log if e.get("sink") == name]
            assert "consumer disconnected" in mine, f"no disconnect logged for {name}: {mine}"
            after = mine[mine.index("consumer disconnected") :]
            assert "consumer reconnected" in after, f"no reconnect logged for {name}: {mine}"
