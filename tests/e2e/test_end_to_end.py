"""End to end: emitter, real broker, daemon, every sink; on RabbitMQ and the embedded broker."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from logfan_testkit import (
    Daemon,
    Setup,
    UdpListener,
    read_lines,
    run_logfan,
    wait_for,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]

RFC5424_MSG = re.compile(rb"\A<\d+>1 \S+ \S+ \S+ \S+ \S+ (?:-|\[.*?\]) (.*)\Z", re.DOTALL)


def syslog_messages(listener: UdpListener) -> list[str]:
    out = []
    for datagram in list(listener.datagrams):
        match = RFC5424_MSG.match(datagram)
        assert match, f"not an RFC 5424 frame: {datagram!r}"
        out.append(match.group(1).decode("utf-8"))
    return out


class TestEveryLineEverySink:
    """The core promise: every sink gets every line, in order."""

    def test_stdin_and_argument_lines_reach_every_sink_in_order(
        self, setup: Setup, daemons: list[Daemon], udp_listener: UdpListener
    ) -> None:
        """2,000 piped lines plus one argument line reach two files, console and syslog."""
        one, two, console, remote = (setup.sink(n) for n in ("one", "two", "console", "remote"))
        config = setup.config(
            {
                one: {
                    "type": "file",
                    "path": str(setup.tmp / "out/one.log"),
                    "format": "{message}",
                },
                two: {"type": "file", "path": str(setup.tmp / "out/deep/two.log")},
                console: {"type": "console", "format": "{tag} {message}"},
                remote: {
                    "type": "syslog",
                    "address": f"udp://127.0.0.1:{udp_listener.port}",
                    "protocol": "rfc5424",
                },
            }
        )
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        expected = [f"line {i} of the flood: ünïcode ✓" for i in range(1, 2001)]
        piped = run_logfan(
            "emit", "-c", str(config), "-t", "e2e", stdin="\n".join(expected).encode()
        )
        assert piped.returncode == 0, piped.stderr
        argv = run_logfan("emit", "-c", str(config), "-t", "e2e", "the", "last", "line")
        assert argv.returncode == 0, argv.stderr
        expected.append("the last line")

        def complete() -> bool:
            return (
                len(read_lines(setup.tmp / "out/one.log")) >= len(expected)
                and len(read_lines(setup.tmp / "out/deep/two.log")) >= len(expected)
                and len(read_lines(daemon.stdout)) >= len(expected)
                and len(udp_listener.datagrams) >= len(expected)
            )

        wait_for(complete, what="every sink to have every line")
        assert daemon.stop() == 0, daemon.logs()
        assert read_lines(setup.tmp / "out/one.log") == expected
        two_lines = read_lines(setup.tmp / "out/deep/two.log")
        assert [line.split(" e2e: ", 1)[1] for line in two_lines] == expected
        assert read_lines(daemon.stdout) == [f"e2e {line}" for line in expected]
        assert syslog_messages(udp_listener) == expected
        assert oct((setup.tmp / "out/one.log").stat().st_mode & 0o777) == "0o640"
        assert ":guest@" not in daemon.logs(), "the broker password never reaches the logs"
        if setup.rabbitmq is not None:
            assert "amqp://guest:***@" in daemon.logs()

    def test_lines_published_while_the_daemon_is_stopped_are_delivered(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """Once its queues exist, a stopped daemon misses nothing: the broker keeps the lines."""
        sink = setup.sink("kept")
        out = setup.tmp / "kept.log"
        config = setup.config({sink: {"type": "file", "path": str(out), "format": "{message}"}})
        first = Daemon(config, setup.tmp).start()
        daemons.append(first)
        assert run_logfan("emit", "-c", str(config), "before").returncode == 0
        wait_for(lambda: read_lines(out) == ["before"], what="the first line")
        assert first.stop() == 0
        lines = [f"while stopped {i}" for i in range(500)]
        sent = run_logfan("emit", "-c", str(config), stdin="\n".join(lines).encode())
        assert sent.returncode == 0, sent.stderr
        assert read_lines(out) == ["before"]
        second = Daemon(config, setup.tmp).start()
        daemons.append(second)
        wait_for(lambda: len(read_lines(out)) >= 501, what="the backlog")
        assert second.stop(signal.SIGINT) == 0
        assert read_lines(out) == ["before", *lines]

    def test_ready_line_gives_each_sink_its_backlog(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """The "logfan ready" line shows how many messages each sink's queue holds, not ``?``."""
        names = [setup.sink("one"), setup.sink("two")]
        config = setup.config(
            {name: {"type": "file", "path": str(setup.tmp / f"{name}.log")} for name in names}
        )
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: "logfan ready" in daemon.logs(), what="logfan ready")
        ready = next(line for line in daemon.logs().splitlines() if "logfan ready" in line)
        status = json.loads(ready)["status"]
        assert [part.split()[0] for part in status.split("; ")] == names, status
        for part in status.split("; "):
            assert re.fullmatch(r"\S+ consuming 0 delivered \d+ queued", part), status


class TestForeignAndBrokenMessages:
    """Any publisher may feed logfan; a malformed body never kills a consumer."""

    def test_plain_and_malformed_bodies_are_delivered_as_text(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """Plain text, invalid UTF-8 and broken envelopes arrive as text; later lines still flow."""
        sink = setup.sink("raw")
        out = setup.tmp / "raw.log"
        config = setup.config({sink: {"type": "file", "path": str(out), "format": "{message}"}})
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        envelope = "application/vnd.logfan.v1+json"
        wait_for(lambda: run_logfan("emit", "-c", str(config), "ready").returncode == 0)
        wait_for(lambda: read_lines(out) == ["ready"], what="the daemon to consume")
        setup.publish_raw(b"info: Hello World!")
        setup.publish_raw(b"bad \xff\xfe bytes", content_type="text/plain")
        setup.publish_raw(b'{"v": 1, "lines": "not a list"}', content_type=envelope)
        setup.publish_raw(b"\x00\x01 not json", content_type=envelope)
        setup.publish_raw(b"two\nlines")
        assert run_logfan("emit", "-c", str(config), "still alive").returncode == 0
        expected = [
            "ready",
            "info: Hello World!",
            "bad \ufffd\ufffd bytes",
            '{"v": 1, "lines": "not a list"}',
            "\\x00\\x01 not json",
            "two",
            "lines",
            "still alive",
        ]
        wait_for(lambda: len(read_lines(out)) >= len(expected), what="all bodies")
        assert daemon.stop() == 0
        assert read_lines(out) == expected

    def test_encoded_bodies_and_a_too_deep_envelope_are_delivered(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """A body with ``content_encoding`` (kombu and Celery set it; py-amqp then hands over
        text, not bytes) and an envelope nested deeper than the JSON decoder allows once wedged
        the sink's queue: the consumer failed on them, reconnected and got them again, forever."""
        sink = setup.sink("enc")
        out = setup.tmp / "enc.log"
        config = setup.config({sink: {"type": "file", "path": str(out), "format": "{message}"}})
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: run_logfan("emit", "-c", str(config), "ready").returncode == 0)
        wait_for(lambda: read_lines(out) == ["ready"], what="the daemon to consume")
        text = "text/plain"
        setup.publish_raw("café utf-8".encode(), content_type=text, content_encoding="utf-8")
        setup.publish_raw(
            "café latin-1".encode("latin-1"), content_type=text, content_encoding="latin-1"
        )
        setup.publish_raw(b"x \xff", content_type=text, content_encoding="no-such-codec")
        setup.publish_raw(b"[" * 5000, content_type="application/vnd.logfan.v1+json")
        assert run_logfan("emit", "-c", str(config), "still alive").returncode == 0
        expected = ["ready", "café utf-8", "café latin-1", "x \ufffd", "[" * 5000, "still alive"]
        wait_for(lambda: len(read_lines(out)) >= len(expected), what="all bodies")
        assert daemon.stop() == 0
        assert read_lines(out) == expected
        assert "consumer disconnected" not in daemon.logs()


class TestTutorialPublisher:
    """The classic RabbitMQ tutorial's emit_log.py (pika) feeds logfan unchanged."""

    def test_emit_log_py_lines_arrive(
        self, rabbitmq: dict[str, Any], tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """The tutorial declares a non-durable fanout 'logs' and publishes text: logfan takes it."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        setup.exchange = "logs"
        sink = setup.sink("tutorial")
        out = tmp_path / "tutorial.log"
        config = setup.config({sink: {"type": "file", "path": str(out), "format": "{message}"}})
        daemon = Daemon(config, tmp_path).start()
        daemons.append(daemon)
        script = Path(__file__).with_name("emit_log.py")

        def publish(text: str) -> int:
            done = subprocess.run([sys.executable, str(script), text], check=False, timeout=60)
            return done.returncode

        wait_for(lambda: _queue_exists(rabbitmq["url"], f"logfan.{sink}"), what="the sink queue")
        assert publish("info: Hello World!") == 0
        assert publish("warning: second") == 0
        wait_for(lambda: len(read_lines(out)) >= 2, what="tutorial lines")
        assert daemon.stop() == 0
        assert read_lines(out) == ["info: Hello World!", "warning: second"]


def _queue_exists(url: str, name: str) -> bool:
    with Connection(url) as conn:
        try:
            conn.channel().queue_declare(queue=name, passive=True)
        except conn.channel_errors:
            return False
        return True


class TestPerSinkLineLimit:
    """Each sink cuts lines longer than its max_line_bytes, with a marker, and counts them."""

    def test_one_megabyte_line_is_cut_for_one_sink_only(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """The small sink gets 1,000 bytes and a marker; the default sink gets 64 KiB."""
        small, default = setup.sink("small"), setup.sink("default")
        outs = {small: setup.tmp / "small.log", default: setup.tmp / "default.log"}
        config = setup.config(
            {
                small: {
                    "type": "file",
                    "path": str(outs[small]),
                    "format": "{message}",
                    "max_line_bytes": 1000,
                },
                default: {"type": "file", "path": str(outs[default]), "format": "{message}"},
            }
        )
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: run_logfan("emit", "-c", str(config), "ready").returncode == 0)
        setup.publish_raw(b"m" * (1 << 20))  # a foreign publisher: no emitter-side limit
        assert run_logfan("emit", "-c", str(config), "after").returncode == 0
        for path in outs.values():
            wait_for(lambda p=path: len(read_lines(p)) == 3, what="three lines")  # type: ignore[misc]
        assert daemon.stop() == 0
        for path, limit in ((outs[small], 1000), (outs[default], 65536)):
            line = read_lines(path)[1]
            kept, _, tail = line.rpartition("...[truncated ")
            assert set(kept) == {"m"}
            assert tail == f"{(1 << 20) - len(kept)} bytes]"
            assert limit - 5 < len(line) <= limit, "cut to the limit, the marker inside it"
        assert [read_lines(p)[2] for p in outs.values()] == ["after", "after"]
