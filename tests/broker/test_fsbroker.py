"""The embedded broker (logfan.daemon.broker.spool): real files, real processes."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer, Exchange, Producer, Queue
from kombu.exceptions import ChannelError
from logfan_testkit import wait_for

from logfan.daemon.broker.spool.transport import Transport

pytestmark = [pytest.mark.processes]

LOGS = Exchange("logs", type="fanout", durable=True)
CONTENT_TYPE = "application/vnd.logfan.v1+json"

#: prelude of every child process: connect to the broker rooted at argv[1]
PRELUDE = """
import json, sys, time
from kombu import Connection, Consumer, Exchange, Producer, Queue
from logfan.daemon.broker.spool.transport import Transport
conn = Connection(transport=Transport, transport_options={"root": sys.argv[1]})
ex = Exchange("logs", type="fanout", durable=True)
"""

#: publish argv[3] messages (forever if 0) of argv[4] padding bytes, as worker argv[2]
PUBLISHER = (
    PRELUDE
    + """
producer = Producer(conn.channel())
worker, count, size = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
i = 0
while count == 0 or i < count:
    body = json.dumps({"w": worker, "i": i, "pad": "x" * size}).encode()
    producer.publish(body, exchange=ex, routing_key="", delivery_mode=2, declare=[ex],
                     content_type="application/vnd.logfan.v1+json", content_encoding="binary")
    print(i, flush=True)
    i += 1
"""
)

#: once file argv[3] exists, declare queue argv[2] bound to the exchange (all binders race)
BINDER = (
    PRELUDE
    + """
import os
channel = conn.channel()
print("ready", flush=True)
while not os.path.exists(sys.argv[3]):
    time.sleep(0.0005)
Queue(sys.argv[2], exchange=ex, durable=True)(channel).declare()
"""
)

#: publish argv[3] messages numbered from argv[2] * argv[3], then say "done" (the test declares)
COUNTER = (
    PRELUDE
    + """
producer = Producer(conn.channel())
first, count = int(sys.argv[2]) * int(sys.argv[3]), int(sys.argv[3])
for i in range(first, first + count):
    producer.publish(str(i).encode(), exchange=ex, routing_key="", content_type="text/plain",
                     content_encoding="binary")
conn.release()
print("done", flush=True)
"""
)

#: like COUNTER from 0, but SIGKILLed at crash point argv[4] of the first dead-lettering
CRASHER = (
    PRELUDE
    + """
import os, signal
from pathlib import Path
import logfan.daemon.broker.spool.bounds as fsbounds
if sys.argv[4] == "before-copy":
    real_write = fsbounds.write_file
    def write_file(folder, *args):
        if folder.name.endswith(".dead"):
            os.kill(os.getpid(), signal.SIGKILL)
        return real_write(folder, *args)
    fsbounds.write_file = write_file
else:
    real_unlink = Path.unlink
    def unlink(self, missing_ok=False):
        if "inflight" in self.parts:
            os.kill(os.getpid(), signal.SIGKILL)
        return real_unlink(self, missing_ok=missing_ok)
    Path.unlink = unlink
producer = Producer(conn.channel())
for i in range(int(sys.argv[3])):
    producer.publish(str(i).encode(), exchange=ex, routing_key="", content_type="text/plain",
                     content_encoding="binary")
"""
)

#: take argv[3] messages from queue argv[2] without acking them, say so, then wait to be killed
HOLDER = (
    PRELUDE
    + """
held = []
consumer = Consumer(conn.channel(), queues=[Queue(sys.argv[2], exchange=ex)],
                    on_message=held.append, prefetch_count=int(sys.argv[3]))
consumer.consume()
while len(held) < int(sys.argv[3]):
    conn.drain_events(timeout=10)
print("held", flush=True)
time.sleep(600)
"""
)


def connect(root: Path, **options: Any) -> Connection:
    return Connection(transport=Transport, transport_options={"root": str(root), **options})


def declare(conn: Connection, *names: str) -> list[Queue]:
    queues = [Queue(name, exchange=LOGS, durable=True) for name in names]
    channel = conn.channel()
    for queue in queues:
        queue(channel).declare()
    return queues


def publish(conn: Connection, body: bytes, **kwargs: Any) -> None:
    kwargs.setdefault("exchange", LOGS)
    Producer(conn.channel()).publish(
        body,
        routing_key=kwargs.pop("routing_key", ""),
        content_type=CONTENT_TYPE,
        content_encoding="binary",
        delivery_mode=2,
        declare=[LOGS],
        **kwargs,
    )


def bounded(limit: int, unit: str = "x-max-length", **extra: Any) -> dict[str, Any]:
    """The arguments logfan gives a bounded sink queue: drop-head into logfan.<sink>.dead."""
    return {
        unit: limit,
        "x-overflow": "drop-head",
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "logfan.file1.dead",
        **extra,
    }


def declare_bounded(conn: Connection, arguments: dict[str, Any]) -> Queue:
    """logfan.file1 bounded by ``arguments``, logfan.file2 unbounded, both on LOGS; the DLQ."""
    channel = conn.channel()
    queue = Queue("logfan.file1", exchange=LOGS, durable=True, queue_arguments=arguments)
    queue(channel).declare()
    Queue("logfan.file2", exchange=LOGS, durable=True)(channel).declare()
    channel.queue_declare("logfan.file1.dead", durable=True, arguments={})
    return queue


def take_all(conn: Connection, queue: str) -> list[Any]:
    """Every ready message of ``queue``, in order, acked."""
    channel, got = conn.channel(), []
    while (message := channel.basic_get(queue)) is not None:
        message.ack()
        got.append(message)
    return got


def drain_until(conn: Connection, done: Callable[[], bool], limit: float = 60) -> None:
    """Deliver messages until ``done()``; gives up after ``limit`` s so a lost message fails."""
    deadline = time.monotonic() + limit
    while not done() and time.monotonic() < deadline:
        with suppress(TimeoutError):
            conn.drain_events(timeout=0.5)


def drain(conn: Connection, queues: list[Queue], count: int, ack: bool = True) -> list[Any]:
    """Consume ``count`` messages (fewer if they never come) and return them."""
    got: list[Any] = []

    def on_message(message: Any) -> None:
        got.append(message)
        if ack:
            message.ack()

    with Consumer(conn.channel(), queues=queues, on_message=on_message, prefetch_count=count):
        drain_until(conn, lambda: len(got) >= count)
    return got


def files(folder: Path, suffix: str = "") -> list[Path]:
    return sorted(p for p in folder.rglob(f"*{suffix}") if p.is_file())


def stopped(pid: int) -> bool:
    """True once process ``pid`` is stopped by a signal (state T in /proc/PID/stat)."""
    stat_line = Path(f"/proc/{pid}/stat").read_text()
    return stat_line.rsplit(")", 1)[1].split()[0] == "T"


def child(script: str, *args: object) -> subprocess.Popen[str]:
    argv = [sys.executable, "-c", script, *map(str, args)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "broker"


@pytest.fixture
def conn(root: Path) -> Iterator[Connection]:
    with connect(root, polling_interval=0.01) as connection:
        yield connection


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class TestPublish:
    def test_writes_tmp_then_renames(self, conn: Connection, root: Path, monkeypatch: Any) -> None:
        """A publish writes <stem>.tmp completely, then renames it to <stem>.msg in its folder."""
        declare(conn, "logfan.file1")
        renames: list[tuple[Path, Path, bytes]] = []
        real_rename = os.rename

        def spy(src: Any, dst: Any) -> None:
            renames.append((Path(src), Path(dst), Path(src).read_bytes()))
            real_rename(src, dst)

        monkeypatch.setattr(os, "rename", spy)
        publish(conn, b"whole body")
        ((src, dst, content),) = renames
        assert src.parent == dst.parent == root / "queues" / "logfan.file1"
        assert (src.suffix, dst.suffix, src.stem) == (".tmp", ".msg", dst.stem)
        assert json.loads(content)["body"]  # the file was complete before it got its final name
        assert files(root / "queues") == [dst]

    def test_get_ignores_half_written_tmp(self, conn: Connection, root: Path) -> None:
        """A .tmp left by a publisher that died mid-write is never delivered, even if oldest."""
        declare(conn, "logfan.file1")
        torn = root / "queues" / "logfan.file1" / "00000000000000000001-00000001-000000000000.tmp"
        torn.write_bytes(b'{"body": "tr')
        publish(conn, b"whole")
        channel = conn.channel()
        message = channel.basic_get("logfan.file1")
        assert message.body == b"whole"
        assert channel.basic_get("logfan.file1") is None
        assert torn.exists()

    def test_stale_tmp_removed_at_start(self, conn: Connection, root: Path) -> None:
        """Starting a transport deletes .tmp files older than a minute and keeps recent ones."""
        declare(conn, "logfan.file1")
        folder = root / "queues" / "logfan.file1"
        stale, fresh = folder / "1.tmp", folder / "2.tmp"
        stale.write_bytes(b"x")
        fresh.write_bytes(b"x")
        os.utime(stale, (time.time() - 120, time.time() - 120))
        with connect(root) as other:
            other.channel()
        assert not stale.exists()
        assert fresh.exists()

    def test_message_round_trips(self, conn: Connection) -> None:
        """Body bytes, headers, content type and encoding, delivery info arrive as published."""
        (q,) = declare(conn, "logfan.file1")
        body = bytes(range(256)) + b'{"not": "utf-8"}'
        publish(conn, body, headers={"x-sink": "file1", "n": 3})
        (message,) = drain(conn, [q], 1)
        assert message.body == body
        assert message.headers == {"x-sink": "file1", "n": 3}
        assert message.content_type == CONTENT_TYPE
        assert message.content_encoding == "binary"
        assert message.delivery_info["exchange"] == "logs"
        assert message.properties["delivery_mode"] == 2
        assert not message.redelivered

    def test_default_exchange_routes_to_dotted_queue(self, conn: Connection) -> None:
        """Publishing to '' with a queue name reaches that queue only, dots in names or not."""
        declare(conn, "logfan.file1")
        conn.channel().queue_declare("logfan.file1.dead", durable=True)  # declared, not bound
        publish(conn, b"dead", exchange="", routing_key="logfan.file1.dead")
        publish(conn, b"live", exchange="", routing_key="logfan.file1")
        publish(conn, b"fanout")
        channel = conn.channel()
        assert channel.basic_get("logfan.file1.dead", no_ack=True).body == b"dead"
        assert channel.basic_get("logfan.file1", no_ack=True).body == b"live"
        assert channel.basic_get("logfan.file1", no_ack=True).body == b"fanout"
        assert channel.basic_get("logfan.file1.dead") is None
        assert channel.basic_get("logfan.file1") is None

    @pytest.mark.parametrize("enabled", [True, False])
    def test_fsync_option(self, root: Path, monkeypatch: Any, enabled: bool) -> None:
        """With fsync=True a publish syncs the message file and its folder; by default neither."""
        synced: list[str] = []
        real_fsync = os.fsync

        def spy(fd: int) -> None:
            synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
            real_fsync(fd)

        with connect(root, fsync=enabled) as connection:
            declare(connection, "logfan.file1")
            monkeypatch.setattr(os, "fsync", spy)
            publish(connection, b"{}")
        assert synced == (["file", "dir"] if enabled else [])


class TestUnbind:
    def test_unbind_reaches_other_processes(self, root: Path) -> None:
        """An unbound queue gets nothing from a publisher connected before or after the unbind."""
        with connect(root) as a, connect(root) as b:
            declare(a, "logfan.keep", "logfan.gone")
            publish(b, b"before")
            a.default_channel.queue_unbind("logfan.gone", "logs")
            publish(b, b"after")
            with connect(root) as c:
                publish(c, b"later")
            assert [m.body for m in take_all(a, "logfan.keep")] == [b"before", b"after", b"later"]
            assert [m.body for m in take_all(a, "logfan.gone")] == [b"before"]


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


class TestTransport:
    def test_polling_interval(self, root: Path) -> None:
        """The polling interval defaults to 0.05 s and follows transport_options."""
        assert connect(root).transport.polling_interval == 0.05
        assert connect(root, polling_interval=0.2).transport.polling_interval == 0.2

    def test_root_is_required(self) -> None:
        """A transport without a root says which option is missing."""
        with pytest.raises(ValueError, match="'root'"):
            _ = Connection(transport=Transport).transport

    def test_roots_are_isolated(self, tmp_path: Path) -> None:
        """Two transports in one process with different roots share no bindings or messages."""
        with connect(tmp_path / "a") as a, connect(tmp_path / "b") as b:
            declare(a, "logfan.file1")
            declare(b, "logfan.file1")
            publish(b, b"for b")
            assert a.channel().basic_get("logfan.file1") is None
            assert b.channel().basic_get("logfan.file1", no_ack=True).body == b"for b"
            publish(a, b"for a")
            assert b.channel().basic_get("logfan.file1") is None
            assert a.channel().basic_get("logfan.file1", no_ack=True).body == b"for a"

    def test_depth_passive_declare_and_purge(self, conn: Connection) -> None:
        """Passive declare reports depth or refuses a missing queue; purge empties a queue."""
        declare(conn, "logfan.file1")
        for _ in range(3):
            publish(conn, b"{}")
        channel = conn.channel()
        assert channel.queue_declare(queue="logfan.file1", passive=True).message_count == 3
        with pytest.raises(ChannelError, match="NOT_FOUND"):
            channel.queue_declare(queue="logfan.nothing", passive=True)
        assert channel.queue_purge("logfan.file1") == 3
        assert channel.queue_declare(queue="logfan.file1", passive=True).message_count == 0

    def test_bad_queue_name_refused(self, conn: Connection) -> None:
        """A queue name that would escape the queues folder is refused."""
        with pytest.raises(ChannelError, match="invalid queue name"):
            conn.channel().queue_declare(queue="../escape")


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
