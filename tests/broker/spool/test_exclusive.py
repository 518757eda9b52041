"""Exclusive queues on the embedded broker: gone with their connection, even after kill -9."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kombu import Connection, Queue
from kombu.exceptions import ChannelError
from logfan_testkit import wait_for
from spoolkit import LOGS, PRELUDE, PUBLISHER, child, connect, declare, files, publish

pytestmark = [pytest.mark.processes]

#: declare the exclusive, bounded queue argv[2] bound to the exchange, say so, then wait
OWNER = (
    PRELUDE
    + """
Queue(sys.argv[2], exchange=ex, durable=False, exclusive=True, auto_delete=True,
      queue_arguments={"x-max-length": 5, "x-overflow": "drop-head"})(conn.channel()).declare()
print("declared", flush=True)
time.sleep(600)
"""
)


def tap(name: str = "logfan-tail.tap") -> Queue:
    return Queue(
        name,
        exchange=LOGS,
        durable=False,
        exclusive=True,
        auto_delete=True,
        queue_arguments={"x-max-length": 5, "x-overflow": "drop-head"},
    )


def bound_queues(root: Path) -> list[str]:
    """The queues bound to LOGS, as every process reads them."""
    return [row[2] for row in json.loads((root / "control" / "logs.exchange").read_text())]


def leftovers(root: Path, queue: str) -> list[Path]:
    """What is left of ``queue`` in the spool: its folder, stored arguments and owner marker."""
    return [
        path
        for path in (
            root / "queues" / queue,
            root / "control" / "queues" / f"{queue}.json",
            root / "control" / "exclusive" / queue,
        )
        if path.exists()
    ]


class TestExclusive:
    def test_deleted_when_its_connection_closes(self, root: Path, conn: Connection) -> None:
        """Closing the connection deletes the queue, its binding, bound and marker; the other
        queues of the exchange keep their messages, and later publishes never remake it."""
        declare(conn, "logfan.file1")
        with connect(root) as owner:
            tap()(owner.channel()).declare()
            for i in range(8):
                publish(conn, str(i).encode())
            assert len(files(root / "queues" / "logfan-tail.tap", ".msg")) == 5
            assert sorted(bound_queues(root)) == ["logfan-tail.tap", "logfan.file1"]
            assert len(leftovers(root, "logfan-tail.tap")) == 3
        assert leftovers(root, "logfan-tail.tap") == []
        assert bound_queues(root) == ["logfan.file1"]
        publish(conn, b"after")
        assert leftovers(root, "logfan-tail.tap") == []
        assert len(files(root / "queues" / "logfan.file1", ".msg")) == 9

    def test_killed_owner_queue_swept_by_the_next_transport(
        self, root: Path, conn: Connection, children: list[subprocess.Popen[str]]
    ) -> None:
        """While its owner lives the queue is kept and locked to others; after kill -9 it stays
        until a transport starts on the spool, which deletes it and its binding."""
        declare(conn, "logfan.file1")
        owner = child(OWNER, root, "logfan-tail.tap")
        children.append(owner)
        assert owner.stdout is not None
        assert owner.stdout.readline() == "declared\n"
        with connect(root) as other:
            other.channel()  # a transport start: the live owner's queue stays
            assert "logfan-tail.tap" in bound_queues(root)
            with pytest.raises(ChannelError, match="RESOURCE_LOCKED"):
                tap()(other.channel()).declare()
        os.kill(owner.pid, signal.SIGKILL)
        owner.wait()
        publish(conn, b"while stale")  # an open transport does not sweep again
        assert len(leftovers(root, "logfan-tail.tap")) == 3
        with connect(root) as fresh:
            fresh.channel()
        assert leftovers(root, "logfan-tail.tap") == []
        assert bound_queues(root) == ["logfan.file1"]
        assert len(files(root / "queues" / "logfan.file1", ".msg")) == 1

    def test_queue_delete_removes_it_for_every_process(self, root: Path, conn: Connection) -> None:
        """queue_delete removes the binding from the shared table too, not only this process's."""
        declare(conn, "logfan.file1", "logfan.file2")
        publish(conn, b"one")
        with connect(root) as other:
            other.channel().queue_delete("logfan.file2")
        assert bound_queues(root) == ["logfan.file1"]
        assert leftovers(root, "logfan.file2") == []
        publish(conn, b"two")
        assert leftovers(root, "logfan.file2") == []
        assert len(files(root / "queues" / "logfan.file1", ".msg")) == 2

    def test_no_publish_remakes_it_while_publishers_run(
        self, root: Path, children: list[subprocess.Popen[str]]
    ) -> None:
        """Publishers that keep publishing while exclusive queues come and go never write into a
        deleted one (an unbind waits for the publishes that read the old bindings)."""
        with connect(root) as setup:
            declare(setup, "logfan.file1")
        publishers = []
        for worker in range(2):
            argv = [sys.executable, "-c", PUBLISHER, str(root), str(worker), "0", "10"]
            publishers.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, text=True))
        children.extend(publishers)

        def failed() -> list[int | None]:
            """The exit statuses of the publishers that died (a publish that failed)."""
            return [p.returncode for p in publishers if p.poll() is not None]

        sink = root / "queues" / "logfan.file1"
        names = [f"logfan-tail.t{i}" for i in range(30)]
        for name in names:
            with connect(root) as owner:
                tap(name)(owner.channel()).declare()
                folder = root / "queues" / name
                wait_for(
                    lambda: len(os.listdir(folder)) >= 5 or bool(failed()),  # noqa: B023
                    what="publishes into the queue",
                )
            assert failed() == []
        published = len(os.listdir(sink))
        wait_for(lambda: len(os.listdir(sink)) > published + 500 or bool(failed()))
        assert failed() == []
        assert [n for n in names if leftovers(root, n)] == []
