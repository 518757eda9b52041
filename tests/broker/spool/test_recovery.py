"""The embedded broker after a crash, and under concurrent processes: nothing lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer
from logfan_testkit import wait_for
from spoolkit import (
    BINDER,
    HOLDER,
    PUBLISHER,
    child,
    connect,
    declare,
    drain,
    drain_until,
    files,
    publish,
    stopped,
)

pytestmark = [pytest.mark.processes]


class TestRecovery:
    def test_killed_consumer_claims_come_back(
        self, conn: Connection, root: Path, children: list[subprocess.Popen[str]]
    ) -> None:
        """After kill -9 of a consumer holding claims, a new transport gets them all back."""
        (q,) = declare(conn, "logfan.file1")
        for i in range(10):
            publish(conn, str(i).encode())
        holder = child(HOLDER, root, "logfan.file1", 6)
        children.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert len(files(root / "inflight", ".msg")) == 6
        with connect(root, polling_interval=0.01) as fresh:
            got = drain(fresh, [q], 10)
        assert sorted(int(m.body) for m in got) == list(range(10))
        assert sum(m.redelivered for m in got) == 6
        assert not [p for p in (root / "inflight").iterdir() if p.name.startswith(f"{holder.pid}-")]

    def test_live_consumer_claims_untouched(
        self, conn: Connection, root: Path, children: list[subprocess.Popen[str]]
    ) -> None:
        """A starting transport leaves a live owner's claims alone; they return once it dies."""
        (q,) = declare(conn, "logfan.file1")
        for i in range(10):
            publish(conn, str(i).encode())
        holder = child(HOLDER, root, "logfan.file1", 4)
        children.append(holder)
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        with connect(root, polling_interval=0.01) as second:
            rest = drain(second, [q], 6)
            assert second.channel().basic_get("logfan.file1") is None
        assert len(files(root / "inflight", ".msg")) == 4
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        with connect(root, polling_interval=0.01) as third:
            returned = drain(third, [q], 4)
        assert sorted(int(m.body) for m in rest + returned) == list(range(10))

    def test_killed_publisher_leaves_nothing_torn(
        self, conn: Connection, root: Path, children: list[subprocess.Popen[str]]
    ) -> None:
        """kill -9 of a publisher while it writes a message: nothing torn is ever delivered.

        The kill must land between a write and its rename. Racing for that window failed on a
        busy machine (three kills in a row landed after the rename), so the publisher is frozen
        (SIGSTOP) whenever a message is being written, and killed only if one still is."""
        (q,) = declare(conn, "logfan.file1")
        folder = root / "queues" / "logfan.file1"
        publisher = child(PUBLISHER, root, 0, 0, 1 << 20)
        children.append(publisher)
        assert publisher.stdout is not None
        for _ in range(5):
            publisher.stdout.readline()
        torn: list[Path] = []
        deadline = time.monotonic() + 60
        while not torn and publisher.poll() is None and time.monotonic() < deadline:
            if any(folder.glob("*.tmp")):
                os.kill(publisher.pid, signal.SIGSTOP)
                wait_for(lambda: stopped(publisher.pid), 10, "the publisher to stop")
                torn = list(folder.glob("*.tmp"))  # frozen: what kill -9 now leaves
                if not torn:
                    os.kill(publisher.pid, signal.SIGCONT)
        os.kill(publisher.pid, signal.SIGKILL)
        publisher.wait()
        assert torn, "the publisher was never caught between a write and its rename"
        depth = conn.channel().queue_declare("logfan.file1", passive=True).message_count
        bodies = [json.loads(m.body) for m in drain(conn, [q], depth)]
        for worker in {b["w"] for b in bodies}:
            sent = [b["i"] for b in bodies if b["w"] == worker]
            assert sent == list(range(len(sent)))
            assert len(sent) >= 5
        assert {len(b["pad"]) for b in bodies} == {1 << 20}
        assert conn.channel().basic_get("logfan.file1") is None
        assert all(p.exists() for p in torn)


class TestConcurrency:
    def test_many_publishers_two_queues(
        self, conn: Connection, children: list[subprocess.Popen[str]]
    ) -> None:
        """8 publisher processes x 2,000 into a fanout: each queue gets each message once, whole."""
        queues = declare(conn, "logfan.file1", "logfan.file2")
        workers, per_worker = 8, 2_000
        for worker in range(workers):
            children.append(child(PUBLISHER, conn.transport.root, worker, per_worker, 50))
        seen: dict[str, list[tuple[int, int]]] = {q.name: [] for q in queues}

        def collect(name: str) -> Callable[[Any], None]:
            def on_message(message: Any) -> None:
                record = json.loads(message.body)
                seen[name].append((record["w"], record["i"]))
                message.ack()

            return on_message

        channel = conn.channel()
        for q in queues:
            Consumer(channel, queues=[q], on_message=collect(q.name), prefetch_count=50).consume()
        total = 2 * workers * per_worker
        drain_until(conn, lambda: sum(map(len, seen.values())) >= total, limit=120)
        expected = sorted((w, i) for w in range(workers) for i in range(per_worker))
        assert [p.wait() for p in children] == [0] * workers
        for name, records in seen.items():
            assert sorted(records) == expected, name

    def test_concurrent_binds_all_kept(
        self, conn: Connection, root: Path, tmp_path: Path, children: list[subprocess.Popen[str]]
    ) -> None:
        """8 processes binding queues to one new exchange at once: every binding is kept."""
        go = tmp_path / "go"
        names = {f"logfan.sink{i}" for i in range(8)}
        children.extend(child(BINDER, root, name, go) for name in names)
        assert [p.stdout.readline() if p.stdout else "" for p in children] == ["ready\n"] * 8
        go.touch()
        assert [p.wait() for p in children] == [0] * len(names)
        assert {row.queue for row in conn.channel().get_table("logs")} == names
