"""Taking and settling messages on the embedded broker: claims, acks, requeues."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer
from spoolkit import (
    connect,
    declare,
    drain,
    drain_until,
    files,
    publish,
)

pytestmark = [pytest.mark.processes]


class TestGet:
    def test_one_consumer_gets_fifo(self, conn: Connection) -> None:
        """A single consumer receives one publisher's messages in publish order."""
        (q,) = declare(conn, "logfan.file1")
        for i in range(300):
            publish(conn, str(i).encode())
        assert [int(m.body) for m in drain(conn, [q], 300)] == list(range(300))

    def test_lists_own_folder_once(self, conn: Connection, root: Path, monkeypatch: Any) -> None:
        """Gets list only their queue's folder, and once per backlog, not once per get."""
        declare(conn, "logfan.file1", "logfan.file2")
        for i in range(200):
            publish(conn, str(i).encode())
        listed: list[Path] = []
        real_listdir = os.listdir

        def spy(path: Any = ".") -> list[str]:
            listed.append(Path(path))
            return real_listdir(path)

        monkeypatch.setattr(os, "listdir", spy)
        channel = conn.channel()
        bodies = [channel.basic_get("logfan.file1", no_ack=True).body for _ in range(200)]
        assert bodies == [str(i).encode() for i in range(200)]
        assert listed == [root / "queues" / "logfan.file1"]

    def test_skips_messages_another_consumer_took(self, conn: Connection, root: Path) -> None:
        """A name that vanished since the listing (claimed elsewhere) is skipped, not an error."""
        declare(conn, "logfan.file1")
        for i in range(20):
            publish(conn, str(i).encode())
        mine = conn.channel()
        got = [mine.basic_get("logfan.file1")]  # lists all 20 names
        with connect(root) as other:
            theirs = other.channel()
            got += [theirs.basic_get("logfan.file1") for _ in range(10)]
            while (message := mine.basic_get("logfan.file1")) is not None:
                got.append(message)
            assert sorted(int(m.body) for m in got) == list(range(20))

    def test_undecodable_file_parked(self, conn: Connection, root: Path) -> None:
        """A .msg that is not a message is moved to root/corrupt/<queue>, and the get goes on."""
        declare(conn, "logfan.file1")
        junk = root / "queues" / "logfan.file1" / "00000000000000000001-00000001-000000000000.msg"
        junk.write_bytes(b"not json")
        publish(conn, b"good")
        assert conn.channel().basic_get("logfan.file1", no_ack=True).body == b"good"
        assert (root / "corrupt" / "logfan.file1" / junk.name).read_bytes() == b"not json"


class TestSettle:
    def test_ack_deletes_claimed_file(self, conn: Connection, root: Path) -> None:
        """A get moves the file into this owner's in-flight folder; ack deletes it."""
        declare(conn, "logfan.file1")
        publish(conn, b"{}")
        message = conn.channel().basic_get("logfan.file1")
        (claimed,) = files(root / "inflight", ".msg")
        assert claimed.parent.name == "logfan.file1"
        assert not files(root / "queues")
        message.ack()
        assert not files(root / "inflight", ".msg")
        assert not files(root / "queues")

    @pytest.mark.parametrize(
        "give_back",
        [lambda m: m.requeue(), lambda m: m.reject(requeue=True)],
        ids=["requeue", "reject-requeue"],
    )
    def test_requeue_moves_back_without_copy(
        self, conn: Connection, root: Path, give_back: Callable[[Any], None]
    ) -> None:
        """requeue / reject(requeue=True) put the one file back; it comes again, redelivered."""
        declare(conn, "logfan.file1")
        publish(conn, b"first")
        publish(conn, b"second")
        channel = conn.channel()
        give_back(channel.basic_get("logfan.file1"))
        assert len(files(root / "queues", ".msg")) == 2
        assert not files(root / "inflight", ".msg")
        again = channel.basic_get("logfan.file1")
        assert (again.body, again.redelivered, again.delivery_info["redelivered"]) == (
            b"first",
            True,
            True,
        )
        assert not channel.basic_get("logfan.file1").redelivered

    def test_reject_without_requeue_drops(self, conn: Connection, root: Path) -> None:
        """reject() without requeue deletes the claimed message."""
        declare(conn, "logfan.file1")
        publish(conn, b"{}")
        conn.channel().basic_get("logfan.file1").reject()
        assert not files(root, ".msg")

    def test_no_ack_consumer_leaves_nothing(self, conn: Connection, root: Path) -> None:
        """A no_ack consumer's messages are deleted on delivery, not kept as claims."""
        (q,) = declare(conn, "logfan.file1")
        publish(conn, b"{}")
        got: list[Any] = []
        with Consumer(conn.channel(), queues=[q], on_message=got.append, no_ack=True):
            drain_until(conn, lambda: bool(got))
        assert len(got) == 1
        assert not files(root, ".msg")

    def test_close_restores_unacked_in_order(self, root: Path) -> None:
        """Closing a channel returns unacked messages once each, in order, marked redelivered."""
        with connect(root) as connection:
            (q,) = declare(connection, "logfan.file1")
            for i in range(5):
                publish(connection, str(i).encode())
            channel = connection.channel()
            Consumer(channel, queues=[q], on_message=lambda m: None, prefetch_count=3).consume()
            connection.drain_events(timeout=1)
            connection.drain_events(timeout=1)
            assert len(files(root / "inflight", ".msg")) == 2
            channel.close()
            assert len(files(root / "queues", ".msg")) == 5
            assert not files(root / "inflight", ".msg")
            got = drain(connection, [q], 5)
        assert [m.body for m in got] == [str(i).encode() for i in range(5)]
        assert [m.redelivered for m in got] == [True, True, False, False, False]
