"""`logfan tail` end to end: a live view on a bounded queue of its own, on both brokers."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from kombu import Connection
from logfan_testkit import LOGFAN, Daemon, Setup, read_lines, run_logfan, suffix, wait_for

pytestmark = [pytest.mark.processes]

#: a tail's first line on stderr, once its queue is bound and consumed
READY = re.compile(r"^logfan tail: showing the lines of exchange \S+ at \S+ through queue (\S+),")
#: a line in the default format: timestamp host tag[pid] severity: message
DEFAULT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (\S+) (\S+)\[(\S+)\] (\w+): (.*)$"
)


class Tail:
    """`logfan tail` as a subprocess; its stderr goes to a file."""

    def __init__(self, config: Path, *args: str, stdout: int | IO[Any]) -> None:
        self.stderr = config.parent / f"tail-{suffix()}.err"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [*LOGFAN, "tail", "-c", str(config), *args], stdout=stdout, stderr=err
            )
        self.queue = ""

    def ready(self) -> str:
        """Wait until the tail consumes its queue; the queue's name."""

        def announced() -> bool:
            assert self.proc.poll() is None, f"logfan tail exited: {self.errors()}"
            return READY.match(self.errors()) is not None

        wait_for(announced, what="logfan tail to consume")
        match = READY.match(self.errors())
        assert match is not None
        self.queue = match.group(1)
        return self.queue

    def errors(self) -> str:
        return self.stderr.read_text(errors="replace")

    def stop(self, sig: int) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(60)


@pytest.fixture
def tails() -> Iterator[list[Tail]]:
    """Tails a test starts; any still running at the end are killed."""
    started: list[Tail] = []
    yield started
    for tail in started:
        if tail.proc.poll() is None:
            tail.proc.kill()
            tail.proc.wait(10)


def start_tail(tails: list[Tail], config: Path, *args: str, stdout: int | IO[Any]) -> Tail:
    tail = Tail(config, *args, stdout=stdout)
    tails.append(tail)
    tail.ready()
    return tail


def leftovers(setup: Setup, queue: str) -> list[str]:
    """What is left of a tap queue on the broker (nothing once it is gone).

    The embedded broker's spool is read as files, with no connection: a connection would
    delete the queue of a dead tail itself, and hide a tail that left its queue behind.
    """
    if setup.rabbitmq is not None:
        with Connection(setup.url) as conn:
            try:
                conn.channel().queue_declare(queue=queue, passive=True)
            except conn.channel_errors as exc:
                if getattr(exc, "reply_code", None) == 404:
                    return []
                if getattr(exc, "reply_code", None) == 405:  # exclusive to a live connection
                    return [f"queue {queue} (locked)"]
                raise
            return [f"queue {queue}"]
    spool = setup.tmp / "spool"
    found = [
        str(path)
        for path in (
            spool / "queues" / queue,
            spool / "control" / "exclusive" / queue,
            spool / "control" / "queues" / f"{queue}.json",
        )
        if path.exists()
    ]
    bindings = json.loads((spool / "control" / f"{setup.exchange}.exchange").read_text())
    return found + [f"binding of {row[2]}" for row in bindings if row[2] == queue]


def tap_depth(setup: Setup, queue: str) -> int:
    """Messages ready in the tap queue, as the broker counts them."""
    if setup.rabbitmq is None:  # passive declare of another's exclusive queue is allowed here
        return setup.queue_depth(queue)
    # RabbitMQ refuses a passive declare of another connection's exclusive queue: ask rabbitmqctl
    done = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "name", "messages_ready", "--formatter", "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = [row for row in json.loads(done.stdout) if row["name"] == queue]
    assert len(rows) == 1, f"queue {queue} not listed: {done.stdout}"
    return int(rows[0]["messages_ready"])


def wait_gone(setup: Setup, queue: str) -> None:
    """On RabbitMQ the broker deletes an exclusive queue after its connection closes, so it is
    waited for; the embedded broker's is gone when the tail has exited, or never."""
    if setup.rabbitmq is not None:
        wait_for(lambda: leftovers(setup, queue) == [], what=f"RabbitMQ to delete {queue}")
    assert leftovers(setup, queue) == []


def file_sink(setup: Setup, name: str) -> tuple[str, Path, dict[str, Any]]:
    sink = setup.sink(name)
    out = setup.tmp / f"{name}.log"
    return sink, out, {"type": "file", "path": str(out), "format": "{message}"}


def running_daemon(setup: Setup, daemons: list[Daemon], config: Path, outs: list[Path]) -> None:
    """Start the daemon and wait until every sink has written the line ``ready``."""
    daemon = Daemon(config, setup.tmp).start()
    daemons.append(daemon)
    assert run_logfan("emit", "-c", str(config), "ready").returncode == 0
    for out in outs:
        wait_for(lambda out=out: read_lines(out) == ["ready"], what="the daemon to consume")  # type: ignore[misc]


@pytest.mark.rabbitmq
class TestLiveView:
    def test_shows_the_lines_the_sinks_get(
        self, setup: Setup, daemons: list[Daemon], tails: list[Tail]
    ) -> None:
        """While the daemon delivers, tail shows each line in the default format, control
        characters escaped; the sink gets every line too."""
        sink, out, options = file_sink(setup, "all")
        config = setup.config({sink: options})
        running_daemon(setup, daemons, config, [out])
        shown = setup.tmp / "tail.out"
        with shown.open("wb") as stdout:
            tail = start_tail(tails, config, stdout=stdout)
        lines = [f"line {i} of the flood: ünïcode ✓" for i in range(1000)]
        sent = run_logfan("emit", "-c", str(config), "-t", "e2e", stdin="\n".join(lines).encode())
        assert sent.returncode == 0, sent.stderr
        setup.publish_raw(b"\x1b]0;owned\x07title\x1b[2J\rfake\nsecond", content_type="text/plain")
        escaped = ["\\x1b]0;owned\\x07title\\x1b[2J\\rfake", "second"]
        wait_for(lambda: len(read_lines(shown)) >= 1002, what="tail to show every line")
        wait_for(lambda: len(read_lines(out)) >= 1003, what="the sink to write every line")
        assert leftovers(setup, tail.queue) != [], "the tap queue exists while tail runs"
        assert tail.stop(signal.SIGTERM) == 0
        got = [DEFAULT_LINE.match(line) for line in read_lines(shown)]
        assert all(got), read_lines(shown)[:3]
        rows = [m.groups() for m in got if m is not None]
        assert [r[4] for r in rows[:1000]] == lines
        assert {(r[1], r[3]) for r in rows[:1000]} == {("e2e", "info")}
        assert [r[4] for r in rows[1000:]] == escaped
        assert b"\x1b" not in shown.read_bytes()
        assert read_lines(out) == ["ready", *lines, *escaped]
        assert tail.errors().count("\n") == 1, tail.errors()  # the announcement; no traceback
        wait_gone(setup, tail.queue)

    def test_format_and_n(self, setup: Setup, tails: list[Tail]) -> None:
        """--format renders each line; -n 3 exits 0 by itself after 3 lines, its queue gone."""
        sink, _, options = file_sink(setup, "all")
        config = setup.config({sink: options})
        shown = setup.tmp / "tail.out"
        with shown.open("wb") as stdout:
            tail = start_tail(
                tails, config, "-n", "3", "--format", "<{severity}> {message}", stdout=stdout
            )
        sent = run_logfan("emit", "-c", str(config), "-p", "err", stdin=b"a\nb\nc\nd\ne\n")
        assert sent.returncode == 0, sent.stderr
        assert tail.proc.wait(60) == 0
        assert read_lines(shown) == ["<err> a", "<err> b", "<err> c"]
        wait_gone(setup, tail.queue)


@pytest.mark.rabbitmq
class TestSelect:
    def test_select_and_sink(self, setup: Setup, tails: list[Tail]) -> None:
        """--select shows what a select would take; --sink what that sink of the config writes."""
        sink, _, options = file_sink(setup, "errors")
        config = setup.config({sink: {**options, "select": {"min_severity": "err"}}})
        chosen, of_sink = setup.tmp / "select.out", setup.tmp / "sink.out"
        with chosen.open("wb") as stdout:
            by_select = start_tail(
                tails, config, "--select", "match=disk", "--select", "tags=app*",
                "--format", "{tag} {message}", stdout=stdout,
            )  # fmt: skip
        with of_sink.open("wb") as stdout:
            by_sink = start_tail(
                tails, config, "--sink", sink, "--format", "{severity} {message}", stdout=stdout
            )
        for tag, severity, line in [
            ("app1", "info", "disk almost full"),
            ("cron", "err", "disk failed"),
            ("app2", "err", "out of memory"),
            ("app3", "crit", "disk gone"),
        ]:
            sent = run_logfan("emit", "-c", str(config), "-t", tag, "-p", severity, line)
            assert sent.returncode == 0, sent.stderr
        wait_for(lambda: len(read_lines(of_sink)) >= 3, what="the sink's lines")
        wait_for(lambda: len(read_lines(chosen)) >= 2, what="the selected lines")
        assert by_sink.stop(signal.SIGTERM) == 0
        assert by_select.stop(signal.SIGTERM) == 0
        assert read_lines(chosen) == ["app1 disk almost full", "app3 disk gone"]
        assert read_lines(of_sink) == ["err disk failed", "err out of memory", "crit disk gone"]

    @pytest.mark.parametrize(
        ("args", "says"),
        [
            (["--select", "match=time(out"], "--select match: not a valid RE2 expression"),
            (["--select", "min_severity"], "--select: expected KEY=VALUE"),
            (["--select", "colour=red"], "--select colour: unknown option"),
            (["--sink", "nope"], "--sink: no sink 'nope'"),
        ],
    )
    def test_refused(self, tmp_path: Path, args: list[str], says: str) -> None:
        config = tmp_path / "logfan.yaml"
        config.write_text(
            f"broker: {{url: 'filesystem://{tmp_path}/spool'}}\n"
            f"sinks: {{all: {{type: file, path: '{tmp_path}/all.log'}}}}\n"
        )
        out = run_logfan("tail", "-c", str(config), *args)
        assert out.returncode == 1
        assert says in out.stderr.decode()


@pytest.mark.rabbitmq
class TestSlowReader:
    def test_a_reader_that_never_reads_costs_the_broker_its_bound(
        self, setup: Setup, daemons: list[Daemon], tails: list[Tail]
    ) -> None:
        """2,000 messages of 1 KB while tail's output is a pipe nobody reads: the tap queue
        holds its bound (100), no more, and both sinks still get every line; SIGTERM ends the
        blocked tail, and its queue goes."""
        (one, out1, opts1), (two, out2, opts2) = file_sink(setup, "one"), file_sink(setup, "two")
        # the blocked tail sends no heartbeats: RabbitMQ would close its connection (deleting
        # its queue) after two missed ones; the test takes less than that
        config = setup.config({one: opts1, two: opts2}, heartbeat=600)
        running_daemon(setup, daemons, config, [out1, out2])
        tail = start_tail(tails, config, "--buffer", "100", stdout=subprocess.PIPE)
        lines = [f"message {i} of 2000 ".ljust(1000, ".") for i in range(2_000)]
        setup.publish_many([line.encode() for line in lines], content_type="text/plain")
        for out in (out1, out2):
            wait_for(lambda out=out: len(read_lines(out)) >= 2_001, what="every line")  # type: ignore[misc]
        # what the tail took is in the pipe (64 KiB, about 60 lines) and in flight (16): the
        # other 1,900 or so went to its queue, which keeps the newest 100
        assert tap_depth(setup, tail.queue) == 100
        assert read_lines(out1) == ["ready", *lines]
        assert read_lines(out2) == ["ready", *lines]
        assert tail.proc.poll() is None, "the tail is still blocked on its output"
        assert tail.stop(signal.SIGTERM) == 0
        assert tail.proc.stdout is not None
        tail.proc.stdout.close()
        assert tail.errors().count("\n") == 1, tail.errors()
        wait_gone(setup, tail.queue)


@pytest.mark.rabbitmq
class TestEnding:
    @pytest.mark.parametrize(
        ("lines", "pad"), [(20, 0), (5000, 200)], ids=["reader-gone-while-idle", "broken-pipe"]
    )
    def test_piped_into_head(self, setup: Setup, tails: list[Tail], lines: int, pad: int) -> None:
        """`logfan tail | head -n 5` ends once head exits: noticed while idle (20 short lines,
        in the pipe at once), or by the write that fails (lines of 200 bytes: one delivery is
        more than the pipe holds, so tail is still writing when head exits); exit 0, nothing
        on stderr but the announcement, the queue gone."""
        sink, _, options = file_sink(setup, "all")
        config = setup.config({sink: options})
        tail = Tail(config, stdout=subprocess.PIPE)
        tails.append(tail)
        assert tail.proc.stdout is not None
        head = subprocess.Popen(["head", "-n", "5"], stdin=tail.proc.stdout, stdout=subprocess.PIPE)
        tail.proc.stdout.close()  # head holds the only read end
        try:
            queue = tail.ready()
            text = "\n".join(f"line {i} {'x' * pad}" for i in range(lines)).encode()
            sent = run_logfan("emit", "-c", str(config), stdin=text)
            assert sent.returncode == 0, sent.stderr
            out, _ = head.communicate(timeout=60)
        finally:
            with contextlib.suppress(ProcessLookupError):
                head.kill()
        assert [line.rsplit(": ", 1)[1] for line in out.decode().splitlines()] == [
            f"line {i} {'x' * pad}" for i in range(5)
        ]
        assert tail.proc.wait(60) == 0
        assert tail.errors().count("\n") == 1, tail.errors()
        wait_gone(setup, queue)

    @pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 0)])
    def test_signals(self, setup: Setup, tails: list[Tail], sig: int, status: int) -> None:
        """Ctrl-C exits 130 (as every logfan command), SIGTERM 0; no traceback, queue gone."""
        sink, _, options = file_sink(setup, "all")
        config = setup.config({sink: options})
        tail = start_tail(tails, config, stdout=subprocess.DEVNULL)
        assert leftovers(setup, tail.queue) != []
        assert tail.stop(sig) == status
        assert tail.errors().count("\n") == 1, tail.errors()
        wait_gone(setup, tail.queue)

    def test_killed_tail_queue_goes(
        self, setup: Setup, daemons: list[Daemon], tails: list[Tail]
    ) -> None:
        """After kill -9 of tail, RabbitMQ deletes its queue with the connection; on the
        embedded broker it stays until the next connection to the spool (here `logfan emit`)
        deletes it. The daemon delivers throughout."""
        sink, out, options = file_sink(setup, "all")
        config = setup.config({sink: options})
        running_daemon(setup, daemons, config, [out])
        tail = start_tail(tails, config, stdout=subprocess.DEVNULL)
        tail.proc.kill()
        tail.proc.wait(60)
        if setup.rabbitmq is None:
            assert len(leftovers(setup, tail.queue)) == 4, "folder, owner, arguments, binding"
        assert run_logfan("emit", "-c", str(config), "after").returncode == 0
        wait_gone(setup, tail.queue)
        wait_for(lambda: read_lines(out) == ["ready", "after"], what="the line after")


class TestBroker:
    def test_broker_down(self, tmp_path: Path) -> None:
        """Nothing listens at the URL: one sentence naming it, exit 1, no traceback."""
        config = tmp_path / "logfan.yaml"
        config.write_text(
            "broker: {url: 'amqp://guest:guest@127.0.0.1:1//'}\n"
            f"sinks:\n  all: {{type: file, path: '{tmp_path}/all.log'}}\n"
        )
        done = run_logfan("tail", "-c", str(config))
        assert done.returncode == 1
        assert done.stdout == b""
        assert done.stderr.decode() == (
            "logfan tail: cannot connect to the broker at amqp://guest:***@127.0.0.1:1//: "
            "[Errno 111] Connection refused\n"
        )

    @pytest.mark.rabbitmq
    def test_wrong_password(self, rabbitmq: dict[str, Any], tmp_path: Path) -> None:
        """RabbitMQ refuses the login: one sentence, exit 1, no traceback."""
        config = tmp_path / "logfan.yaml"
        config.write_text(
            "broker: {url: 'amqp://guest:wrong@127.0.0.1:5672//'}\n"
            f"sinks:\n  all: {{type: file, path: '{tmp_path}/all.log'}}\n"
        )
        done = run_logfan("tail", "-c", str(config))
        assert done.returncode == 1
        err = done.stderr.decode()
        assert err.startswith("logfan tail: cannot connect to the broker at amqp://guest:***@")
        assert "ACCESS_REFUSED" in err
        assert err.count("\n") == 1
        assert "wrong" not in err
