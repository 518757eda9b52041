"""Bounded queues on the embedded broker: x-max-length(-bytes), drop-head into dead letters."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer, Queue
from kombu.exceptions import ChannelError
from spoolkit import (
    CONTENT_TYPE,
    COUNTER,
    CRASHER,
    LOGS,
    bounded,
    child,
    connect,
    declare_bounded,
    drain_until,
    files,
    publish,
    take_all,
)

pytestmark = [pytest.mark.processes]


class TestBounds:
    """Bounded queues (x-max-length, x-max-length-bytes, drop-head) as RabbitMQ has them."""

    def test_max_length_keeps_newest_and_dead_letters_oldest(self, conn: Connection) -> None:
        """1,000 into a queue bounded at 100: newest 100 kept, oldest 900 dead-lettered, maxlen."""
        declare_bounded(conn, bounded(100))
        for i in range(1000):
            publish(conn, str(i).encode())
        kept = take_all(conn, "logfan.file1")
        dead = take_all(conn, "logfan.file1.dead")
        everything = take_all(conn, "logfan.file2")
        assert [int(m.body) for m in kept] == list(range(900, 1000))
        assert [int(m.body) for m in dead] == list(range(900))
        assert [int(m.body) for m in everything] == list(range(1000))
        for message in dead:
            first = message.headers["x-death"][0]
            assert {k: first[k] for k in ("reason", "queue", "count", "exchange")} == {
                "reason": "maxlen",
                "queue": "logfan.file1",
                "count": 1,
                "exchange": "logs",
            }
            assert first["routing-keys"] == [""]
            assert message.headers["x-first-death-reason"] == "maxlen"
            assert message.delivery_info["routing_key"] == "logfan.file1.dead"
            assert message.content_type == CONTENT_TYPE
            assert not message.redelivered
        assert all("x-death" not in m.headers for m in kept + everything)

    def test_max_length_bytes_counts_bodies_as_published(self, conn: Connection) -> None:
        """Bounded at 100 bodies' bytes (not base64, not properties): the newest 100 are kept."""
        bodies = [f"{i:04d}".encode() + b"." * 96 for i in range(1000)]  # 100 bytes each
        declare_bounded(conn, bounded(100 * 100, "x-max-length-bytes"))
        for body in bodies:
            publish(conn, body)
        kept = take_all(conn, "logfan.file1")
        dead = take_all(conn, "logfan.file1.dead")
        assert [m.body for m in kept] == bodies[900:]
        assert [m.body for m in dead] == bodies[:900]
        assert {m.headers["x-death"][0]["reason"] for m in dead} == {"maxlen"}
        assert len(take_all(conn, "logfan.file2")) == 1000

    def test_kombu_max_length_attribute(self, conn: Connection) -> None:
        """Queue(max_length=N) works as on RabbitMQ (kombu's virtual channels ignore it)."""
        queue = Queue("logfan.file1", exchange=LOGS, max_length=3)
        queue(conn.channel()).declare()
        for i in range(5):
            publish(conn, str(i).encode())
        assert [int(m.body) for m in take_all(conn, "logfan.file1")] == [2, 3, 4]

    def test_without_dead_letter_exchange_drops(self, conn: Connection, root: Path) -> None:
        """Bounded with no dead-letter exchange, the oldest are deleted, as RabbitMQ does."""
        declare_bounded(conn, {"x-max-length": 5})
        for i in range(20):
            publish(conn, str(i).encode())
        assert [int(m.body) for m in take_all(conn, "logfan.file1")] == list(range(15, 20))
        assert len(take_all(conn, "logfan.file2")) == 20
        assert not files(root / "queues" / "logfan.file1.dead")
        assert not files(root / "inflight", ".msg")

    def test_dead_letter_cycle_drops(self, conn: Connection, root: Path) -> None:
        """A queue whose dead letters would come back to itself deletes them (no endless loop)."""
        declare_bounded(conn, bounded(2, **{"x-dead-letter-routing-key": "logfan.file1"}))
        for i in range(5):
            publish(conn, str(i).encode())
        assert [int(m.body) for m in take_all(conn, "logfan.file1")] == [3, 4]
        assert not files(root / "inflight", ".msg")

    def test_claimed_messages_do_not_count(self, conn: Connection, root: Path) -> None:
        """As on RabbitMQ only ready messages count: unacked claims are never dropped."""
        declare_bounded(conn, bounded(10))
        for i in range(10):
            publish(conn, str(i).encode())
        consumer = conn.channel()
        held = [consumer.basic_get("logfan.file1") for _ in range(10)]
        for i in range(10, 20):
            publish(conn, str(i).encode())
        assert not take_all(conn, "logfan.file1.dead")
        publish(conn, b"20")
        assert [int(m.body) for m in take_all(conn, "logfan.file1.dead")] == [10]
        assert len(files(root / "inflight", ".msg")) == 10
        for message in held:
            message.ack()
        assert [int(m.body) for m in take_all(conn, "logfan.file1")] == list(range(11, 21))

    def test_arguments_stored_for_other_processes(
        self, conn: Connection, root: Path, children: list[subprocess.Popen[str]]
    ) -> None:
        """The declaration is stored in control/queues; a publisher that never declared obeys."""
        declare_bounded(conn, bounded(100))
        stored = json.loads((root / "control" / "queues" / "logfan.file1.json").read_bytes())
        assert stored == bounded(100)
        publisher = child(COUNTER, root, 0, 300)
        children.append(publisher)
        assert publisher.stdout is not None
        assert publisher.stdout.readline() == "done\n"
        assert [int(m.body) for m in take_all(conn, "logfan.file1")] == list(range(200, 300))
        assert len(take_all(conn, "logfan.file1.dead")) == 200

    def test_last_declaration_wins(self, conn: Connection, root: Path) -> None:
        """Redeclaring with other bounds replaces them, and with none removes them."""
        declare_bounded(conn, bounded(100))
        declare_bounded(conn, bounded(2))
        for i in range(5):
            publish(conn, str(i).encode())
        assert [int(m.body) for m in take_all(conn, "logfan.file1")] == [3, 4]
        declare_bounded(conn, {})
        assert not (root / "control" / "queues" / "logfan.file1.json").exists()
        for i in range(5):
            publish(conn, str(i).encode())
        assert len(take_all(conn, "logfan.file1")) == 5

    @pytest.mark.parametrize(
        ("arguments", "match"),
        [
            ({"x-max-length": 5, "x-overflow": "reject-publish"}, "only drop-head"),
            ({"x-max-length": 5, "x-dead-letter-exchange": "dlx"}, "default exchange"),
            ({"x-max-length": -1}, "non-negative integer"),
            ({"x-max-length-bytes": "1MB"}, "non-negative integer"),
            ({"x-max-length": 5, "x-dead-letter-routing-key": "q"}, "x-dead-letter-exchange"),
            (bounded(5, **{"x-dead-letter-routing-key": "../up"}), "not a valid queue name"),
        ],
    )
    def test_unsupported_arguments_refused(
        self, conn: Connection, root: Path, arguments: dict[str, Any], match: str
    ) -> None:
        """What the embedded broker cannot do is refused at declaration, not ignored later."""
        with pytest.raises(ChannelError, match=f"PRECONDITION_FAILED.*{match}"):
            conn.channel().queue_declare("logfan.file1", durable=True, arguments=arguments)
        assert not (root / "control" / "queues" / "logfan.file1.json").exists()

    def test_lists_the_folder_once_per_sixteenth_of_the_bound(
        self, conn: Connection, monkeypatch: Any
    ) -> None:
        """A full queue is not listed on every publish; prints the cost per publish (a figure)."""
        declare_bounded(conn, {})
        start = time.perf_counter()
        for i in range(1600):
            publish(conn, str(i).encode())
        unbounded = (time.perf_counter() - start) / 1600
        declare_bounded(conn, bounded(320))
        publish(conn, b"trim")
        listed: list[Path] = []
        real_listdir = os.listdir

        def spy(path: Any = ".") -> list[str]:
            listed.append(Path(path))
            return real_listdir(path)

        monkeypatch.setattr(os, "listdir", spy)
        start = time.perf_counter()
        for i in range(1600, 3200):
            publish(conn, str(i).encode())
        full = (time.perf_counter() - start) / 1600
        monkeypatch.undo()
        print(
            f"\nper publish into two queues: {unbounded * 1e6:.0f} us unbounded, "
            f"{full * 1e6:.0f} us with one of them full at 320 (a drop each); "
            f"{len(listed)} listings in 1,600 publishes"
        )
        assert len(listed) <= 1600 // (320 // 16) + 1
        assert [int(m.body) for m in take_all(conn, "logfan.file1")] == list(range(2880, 3200))

    def test_concurrent_publishers_keep_bound_and_lose_nothing(
        self, conn: Connection, children: list[subprocess.Popen[str]]
    ) -> None:
        """4 publisher processes into a queue bounded at 100: bounded + dead == published, once."""
        declare_bounded(conn, bounded(100))
        workers, per_worker = 4, 1000
        children.extend(child(COUNTER, conn.transport.root, w, per_worker) for w in range(workers))
        assert [p.stdout.readline() if p.stdout else "" for p in children] == ["done\n"] * workers
        kept = [int(m.body) for m in take_all(conn, "logfan.file1")]
        dead = [int(m.body) for m in take_all(conn, "logfan.file1.dead")]
        everything = [int(m.body) for m in take_all(conn, "logfan.file2")]
        print(f"\nbounded={len(kept)} dead={len(dead)} unbounded={len(everything)}")
        assert len(kept) <= 100
        assert sorted(kept + dead) == list(range(workers * per_worker))
        assert sorted(everything) == list(range(workers * per_worker))

    def test_consumer_claiming_while_publisher_drops(
        self, conn: Connection, children: list[subprocess.Popen[str]]
    ) -> None:
        """A consumer acking while another process drops: consumed + dead + left == published."""
        (q,) = [declare_bounded(conn, bounded(50))]
        publisher = child(COUNTER, conn.transport.root, 0, 3000)
        children.append(publisher)
        consumed: list[int] = []

        def on_message(message: Any) -> None:
            consumed.append(int(message.body))
            message.ack()
            time.sleep(0.001)  # slower than the publisher: the queue fills and drops its head

        with Consumer(conn.channel(), queues=[q], on_message=on_message, prefetch_count=10):
            drain_until(conn, lambda: publisher.poll() is not None, limit=120)
        left = [int(m.body) for m in take_all(conn, "logfan.file1")]
        dead = [int(m.body) for m in take_all(conn, "logfan.file1.dead")]
        print(f"\nconsumed={len(consumed)} dead={len(dead)} left={len(left)}")
        assert publisher.returncode == 0
        assert len(left) <= 50
        assert sorted(consumed + dead + left) == list(range(3000))

    @pytest.mark.parametrize("point", ["before-copy", "after-copy"])
    def test_crash_while_dead_lettering_never_loses(
        self, conn: Connection, root: Path, children: list[subprocess.Popen[str]], point: str
    ) -> None:
        """kill -9 before the dead-letter copy or before the claim is deleted: nothing lost."""
        declare_bounded(conn, bounded(10))
        crasher = child(CRASHER, root, 0, 11, point)
        children.append(crasher)
        assert crasher.wait() == -signal.SIGKILL
        assert len(files(root / "inflight", ".msg")) == 1  # message 0, claimed for dropping
        with connect(root) as fresh:  # recovers the dead publisher's claim
            kept = take_all(fresh, "logfan.file1")
            dead = take_all(fresh, "logfan.file1.dead")
        assert sorted(int(m.body) for m in kept) == list(range(11))
        assert [m.body for m in kept if m.redelivered] == [b"0"]
        assert [m.body for m in dead] == ([b"0"] if point == "after-copy" else [])
        assert not files(root / "inflight", ".msg")
