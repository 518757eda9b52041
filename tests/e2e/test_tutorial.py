"""The RabbitMQ tutorial, both ways: its publisher feeds logfan, its kind of consumer reads
``logfan emit --plain``; and a line shows the same host and time in every sink."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import amqp
import pytest
import yaml
from kombu import Connection
from logfan_testkit import (
    Daemon,
    Setup,
    TcpSyslogListener,
    UdpListener,
    log_events,
    read_lines,
    run_logfan,
    wait_for,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]

EMIT_LOG = Path(__file__).with_name("emit_log.py")
#: what the file and console sinks write for each line: the fields every sink shows
FIELDS = "{timestamp}|{host}|{tag}|{message}"
#: an RFC 5424 message: PRI VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG
RFC5424 = re.compile(r"\A<\d+>1 (\S+) (\S+) (\S+) \S+ \S+ - (.*)\Z", re.DOTALL)


def seconds(stamp: str) -> float:
    """Seconds since the epoch of a record's RFC 3339 timestamp."""
    return datetime.fromisoformat(stamp).timestamp()


class EverySink:
    """A daemon on ``setup``'s exchange with a file, a console and a syslog (UDP, RFC 5424)
    sink: three sink types, three pieces of code that fill in time and host."""

    def __init__(self, setup: Setup, daemons: list[Daemon], listener: UdpListener) -> None:
        self.out = setup.tmp / "file.log"
        self.listener = listener
        config = setup.config(
            {
                setup.sink("file"): {"type": "file", "path": str(self.out), "format": FIELDS},
                setup.sink("console"): {"type": "console", "format": FIELDS},
                setup.sink("syslog"): {
                    "type": "syslog",
                    "address": f"udp://127.0.0.1:{listener.port}",
                    "protocol": "rfc5424",
                },
            }
        )
        self.daemon = Daemon(config, setup.tmp).start()
        daemons.append(self.daemon)
        # consuming, so a line is received as it arrives (not taken later from a backlog)
        wait_for(lambda: bool(log_events(self.daemon, "logfan ready")), what="the daemon ready")

    def fields(self, marker: str) -> dict[str, list[tuple[str, str, str]]]:
        """(timestamp, host, tag) of each line holding ``marker``, per sink type."""
        out: dict[str, list[tuple[str, str, str]]] = {"file": [], "console": [], "syslog": []}
        for kind, lines in (("file", read_lines(self.out)), ("console", self.console())):
            for line in lines:
                stamp, host, tag, message = line.split("|", 3)
                if marker in message:
                    out[kind].append((stamp, host, tag))
        for datagram in list(self.listener.datagrams):
            match = RFC5424.match(datagram.decode("utf-8"))
            assert match, f"not an RFC 5424 message: {datagram!r}"
            if marker in match[4]:
                out["syslog"].append((match[1], match[2], match[3]))
        return out

    def console(self) -> list[str]:
        assert self.daemon.stdout is not None
        return read_lines(self.daemon.stdout)

    def wait(self, marker: str, count: int) -> dict[str, list[tuple[str, str, str]]]:
        """Wait until every sink has ``count`` lines holding ``marker``; their fields."""
        wait_for(
            lambda: all(len(got) >= count for got in self.fields(marker).values()),
            what=f"{count} line(s) with {marker!r} in every sink",
        )
        return self.fields(marker)


class TestTutorialPublisherEverySinkAlike:
    """A line from the tutorial's emit_log.py (a bare text body, no properties) shows the same
    host and the same time in every sink."""

    def test_emit_log_py_line_has_one_host_and_a_time_of_arrival(
        self, rabbitmq: dict[str, Any], tmp_path: Path, daemons: list[Daemon], udp_listener: Any
    ) -> None:
        """No host in the message: the daemon's host name, in every sink (the file sink once
        wrote '-', the syslog sink the machine's name). No time in the message: each sink's
        time of receipt, which is within a second of the wall clock at publish time (RabbitMQ
        3.10 stamps no arrival time, so the sinks' times may differ by a few milliseconds)."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        setup.exchange = "logs"  # the tutorial's exchange, hard-coded in emit_log.py
        sinks = EverySink(setup, daemons, udp_listener)
        marker = f"tutorial line {setup.id}"
        before = time.time()
        done = subprocess.run(
            [sys.executable, str(EMIT_LOG), f"info: {marker}"], check=False, timeout=60
        )
        published = time.time()
        assert done.returncode == 0
        got = sinks.wait(marker, 1)
        seen = time.time()
        assert daemons[0].stop() == 0, daemons[0].logs()
        print(got)
        assert [len(lines) for lines in got.values()] == [1, 1, 1]
        hosts_and_tags = {(host, tag) for ((_, host, tag),) in got.values()}
        assert hosts_and_tags == {(socket.gethostname().split(".")[0], "-")}
        for kind, ((stamp, _, _),) in got.items():
            # received after the publish began and before the line was seen written (the
            # time has milliseconds: the start is cut to them too)
            assert int(before * 1000) / 1000 <= seconds(stamp) <= seen, (kind, stamp)
            assert seconds(stamp) < published + 1.0, f"{kind}: over a second after arrival"

    def test_a_timestamp_property_is_the_time_in_every_sink(
        self, rabbitmq: dict[str, Any], tmp_path: Path, daemons: list[Daemon], udp_listener: Any
    ) -> None:
        """A foreign line with the AMQP ``timestamp`` (seconds) shows that time in every sink;
        one with a ``timestamp_in_ms`` header (what RabbitMQ's timestamp plugin and message
        interceptor add) shows that time to the millisecond."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        sinks = EverySink(setup, daemons, udp_listener)
        setup.publish_raw(f"stamped in s {setup.id}".encode(), timestamp=1_700_000_000)
        setup.publish_raw(
            f"stamped in ms {setup.id}".encode(), headers={"timestamp_in_ms": 1_700_000_000_123}
        )
        host = socket.gethostname().split(".")[0]
        for marker, stamp in (
            (f"stamped in s {setup.id}", "2023-11-14T22:13:20.000Z"),
            (f"stamped in ms {setup.id}", "2023-11-14T22:13:20.123Z"),
        ):
            got = sinks.wait(marker, 1)
            assert got == {kind: [(stamp, host, "-")] for kind in ("file", "console", "syslog")}
        assert daemons[0].stop() == 0, daemons[0].logs()


def held(status_file: Path, sink: str) -> int:
    """Deliveries ``sink``'s consumer holds, as the daemon's status file last said."""
    try:
        figures = json.loads(status_file.read_text())["sinks"][sink]
    except (OSError, ValueError, KeyError):
        return 0
    return int(figures.get("held", 0))


class TestTimeOfReceipt:
    """A line without a time gets the time its sink's consumer received it, not the time its
    batch was finally written."""

    def test_a_retried_line_keeps_its_time_of_receipt(
        self, rabbitmq: dict[str, Any], tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """The syslog receiver is down when the line arrives and comes back later: the line
        still shows when it was received, which is before the receiver came back."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        receiver = TcpSyslogListener()
        receiver.close()  # down: the sink retries its batch until it listens again
        sink = setup.sink("late")
        status = tmp_path / "status.json"
        config = tmp_path / "logfan.yaml"
        syslog = {"type": "syslog", "address": f"tcp://127.0.0.1:{receiver.port}"}
        doc = {
            "broker": {"url": setup.url, "exchange": setup.exchange},
            "sinks": {sink: {**syslog, "protocol": "rfc5424"}},
            "daemon": {"status_file": str(status)},
        }
        config.write_text(yaml.safe_dump(doc))
        daemon = Daemon(config, tmp_path).start()
        daemons.append(daemon)
        try:
            wait_for(lambda: bool(log_events(daemon, "logfan ready")), what="the daemon ready")
            setup.publish_raw(f"late line {setup.id}".encode())
            wait_for(lambda: held(status, sink) == 1, what="the line held by the consumer")
            back = time.time()
            receiver.open()
            wait_for(lambda: bool(receiver.frames), what="the line at the receiver")
            assert daemon.stop() == 0, daemon.logs()
        finally:
            receiver.close()
        (frame,) = receiver.frames
        match = RFC5424.match(frame.decode("utf-8"))
        assert match, frame
        assert match[4] == f"late line {setup.id}"
        assert seconds(match[1]) <= back, "stamped when written, not when received"


class TutorialConsumer:
    """A consumer written like the tutorial's receive_log.py, on raw py-amqp: an exclusive,
    server-named queue bound to the fanout exchange, and basic_consume. Bodies stay bytes."""

    def __init__(self, url: str, exchange: str) -> None:
        self.kombu = Connection(url)
        self.conn: amqp.Connection = self.kombu.connection  # py-amqp's own, connected
        channel = self.conn.channel()
        channel.auto_decode = False  # bytes, as pika hands them to the tutorial's callback
        channel.exchange_declare(exchange, "fanout", durable=False, auto_delete=False)
        queue, _, _ = channel.queue_declare("", exclusive=True)
        channel.queue_bind(queue, exchange)
        self.messages: list[amqp.Message] = []
        channel.basic_consume(queue, callback=self.messages.append, no_ack=True)

    def take(self, count: int) -> list[amqp.Message]:
        """Wait for ``count`` messages in all."""

        def enough() -> bool:
            with contextlib.suppress(TimeoutError):
                self.conn.drain_events(timeout=0.2)
            return len(self.messages) >= count

        wait_for(enough, what=f"{count} messages")
        return self.messages

    def close(self) -> None:
        self.kombu.close()


class TestTutorialConsumerReadsPlain:
    """``logfan emit --plain`` is what the tutorial's receive_log.py expects."""

    def test_one_line_per_message_with_properties(
        self, rabbitmq: dict[str, Any], tmp_path: Path
    ) -> None:
        """100 lines from stdin and one from the arguments: 101 messages, each body exactly
        its line, with timestamp, app_id and message_id; nothing else in any of them."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        config = setup.config(
            {setup.sink("kept"): {"type": "file", "path": str(tmp_path / "kept.log")}}
        )
        consumer = TutorialConsumer(setup.url, setup.exchange)
        try:
            lines = [str(n) for n in range(1, 101)]
            before = int(time.time())
            piped = run_logfan(
                "emit", "-c", str(config), "--plain", "-t", "seq",
                stdin="".join(f"{line}\n" for line in lines).encode(),
            )  # fmt: skip
            assert piped.returncode == 0, piped.stderr
            argv = run_logfan("emit", "-c", str(config), "--plain", "-t", "seq", "a", "b")
            assert argv.returncode == 0, argv.stderr
            after = int(time.time())
            messages = consumer.take(101)
        finally:
            consumer.close()
        assert len(messages) == 101
        assert [m.body for m in messages] == [line.encode() for line in [*lines, "a b"]]
        for message in messages:
            props = message.properties
            assert props["content_type"] == "text/plain"
            assert props["app_id"] == "seq"
            assert before <= props["timestamp"] <= after
            assert props["delivery_mode"] == 2
        ids = [m.properties["message_id"] for m in messages]
        run = ids[0].rpartition("-")[0]
        assert re.fullmatch(r"[0-9a-f]{32}", run)
        assert ids[:100] == [f"{run}-{n}" for n in range(100)]
        assert ids[100].endswith("-0")
        assert not ids[100].startswith(run), "another run, another id"


class TestPlainLinesInLogfansSinks:
    """``--plain`` loses nothing for logfan's own sinks compared with envelopes."""

    def test_tag_severity_host_pid_and_msgid_arrive(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """The same lines sent as envelopes and with --plain show the same fields."""
        out = setup.tmp / "fields.log"
        fmt = "{host} {tag} {severity} {pid} {msgid} {message}"
        config = setup.config({setup.sink("f"): {"type": "file", "path": str(out), "format": fmt}})
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        lines = [f"line {n} ünïcode" for n in range(5)]
        stdin = "".join(f"{line}\n" for line in lines).encode()
        for mode in ([], ["--plain"]):
            options = [*mode, "-t", "build", "-p", "4"]
            done = run_logfan("emit", "-c", str(config), *options, stdin=stdin)
            assert done.returncode == 0, done.stderr
        wait_for(lambda: len(read_lines(out)) >= 10, what="both runs' lines")
        assert daemon.stop() == 0, daemon.logs()
        written = [line.split(" ", 5) for line in read_lines(out)]
        host = socket.gethostname()
        for half in (written[:5], written[5:]):
            assert [row[5] for row in half] == lines
            assert {(row[0], row[1], row[2]) for row in half} == {(host, "build", "warning")}
            assert len({row[3] for row in half}) == 1
            assert half[0][3].isdigit()
            run = half[0][4].rpartition("-")[0]
            assert [row[4] for row in half] == [f"{run}-{n}" for n in range(5)]


class TestPlainExitStatus:
    """``--plain`` exits 1 unless the broker confirmed every line, as envelopes do."""

    def test_no_bound_queue_is_a_failure(self, rabbitmq: dict[str, Any], tmp_path: Path) -> None:
        """Lines that reach no queue are not confirmed."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        done = run_logfan(
            "emit", "--url", setup.url, "-x", setup.exchange, "--plain", stdin=b"1\n2\n3\n"
        )
        assert done.returncode == 1
        assert "no queue is bound to the exchange" in done.stderr.decode()

    def test_no_bound_queue_is_a_failure_on_the_embedded_broker(self, tmp_path: Path) -> None:
        """The same on the embedded broker."""
        done = run_logfan("emit", "--url", f"filesystem://{tmp_path}/spool", "--plain", "lost?")
        assert done.returncode == 1
        assert "no queue is bound to the exchange" in done.stderr.decode()

    def test_unreachable_broker_counts_every_line(self) -> None:
        """Nothing confirmed: each line counted as not confirmed, no traceback."""
        done = run_logfan(
            "emit", "--url", "amqp://127.0.0.1:1//", "--retry-for", "1", "--plain",
            stdin=b"1\n2\n3\n4\n5\n",
        )  # fmt: skip
        err = done.stderr.decode()
        assert done.returncode == 1
        assert "Traceback" not in err
        assert err.startswith("logfan emit: 5 line(s) not confirmed: --retry-for (1 s)"), err
        assert "another try at the broker at amqp://127.0.0.1:1//: " in err, err
