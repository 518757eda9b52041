"""`logfan emit`: streaming from a pipe, exit status tied to confirms, clear errors."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from logfan_testkit import LOGFAN, Daemon, read_lines, run_logfan, suffix, wait_for, write_config

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]


class TestEmitterFailures:
    """The emitter exits non-zero with one clear sentence unless every line was confirmed."""

    def test_unreachable_broker_fails_fast_without_traceback(self) -> None:
        """No broker on the port: non-zero within the retry window, password never shown."""
        started = time.monotonic()
        done = run_logfan(
            "emit",
            "--url",
            "amqp://guest:hunter2@127.0.0.1:1//",
            "--retry-for",
            "2",
            "hello",
            timeout=60,
        )
        elapsed = time.monotonic() - started
        err = done.stderr.decode()
        assert done.returncode == 1
        assert "Traceback" not in err
        assert "hunter2" not in err
        warning, failure = err.strip().splitlines()
        assert warning.startswith("logfan emit: warning: a password in --url is visible")
        assert failure.startswith("logfan emit: 1 line(s) not confirmed: --retry-for (")
        assert "another try at the broker at amqp://guest:***@" in failure
        assert elapsed < 30, f"took {elapsed:.1f} s"

    def test_default_retry_window_is_bounded_by_30_seconds(self) -> None:
        """Without --retry-for the emitter still gives up by itself (30 s default)."""
        started = time.monotonic()
        done = run_logfan("emit", "--url", "amqp://guest:guest@127.0.0.1:1//", "x", timeout=90)
        assert done.returncode == 1
        assert "--retry-for (30 s) leaves no time for another try" in done.stderr.decode()
        assert time.monotonic() - started < 60

    def test_unknown_severity_is_refused(self, tmp_path: Path) -> None:
        """A bad -p names the valid severities."""
        done = run_logfan("emit", "--url", f"filesystem://{tmp_path}", "-p", "loud", "x")
        assert done.returncode == 1
        assert "unknown severity 'loud'" in done.stderr.decode()

    def test_no_bound_queue_is_a_failure_on_rabbitmq(self, rabbitmq: dict[str, Any]) -> None:
        """Lines that would reach no queue are not 'confirmed': exit 1 and say why."""
        exchange = f"lftest-empty-{suffix()}"
        rabbitmq["exchanges"].append(exchange)
        done = run_logfan("emit", "--url", rabbitmq["url"], "-x", exchange, "lost?")
        assert done.returncode == 1
        assert "no queue is bound to the exchange" in done.stderr.decode()

    def test_no_bound_queue_is_a_failure_on_the_embedded_broker(self, tmp_path: Path) -> None:
        """The same on the embedded broker."""
        done = run_logfan("emit", "--url", f"filesystem://{tmp_path}/spool", "lost?")
        assert done.returncode == 1
        assert "no queue is bound to the exchange" in done.stderr.decode()


def embedded_daemon(tmp_path: Path, out: Path, daemons: list[Daemon]) -> Path:
    """A daemon on the embedded broker with one file sink writing bare messages to ``out``."""
    sink = {"type": "file", "path": str(out), "format": "{message}"}
    config = write_config(
        tmp_path / "c.yaml", f"filesystem://{tmp_path}/spool", "logs", {f"s-{suffix()}": sink}
    )
    daemons.append(Daemon(config, tmp_path).start())
    return config


class TestEmitterStreaming:
    """A line typed now is sent now, not at EOF."""

    def test_a_line_is_delivered_while_the_pipe_stays_open(
        self, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """Each line written to the emitter's stdin reaches the sink before stdin closes."""
        out = tmp_path / "stream.log"
        config = embedded_daemon(tmp_path, out, daemons)
        emitter = subprocess.Popen(
            [*LOGFAN, "emit", "-c", str(config)], stdin=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert emitter.stdin is not None
        try:
            for i in range(3):
                emitter.stdin.write(f"typed {i}\n".encode())
                emitter.stdin.flush()
                wait_for(lambda i=i: len(read_lines(out)) == i + 1, what=f"line {i}")  # type: ignore[misc]
            assert emitter.poll() is None, "the emitter must still be reading"
        finally:
            emitter.stdin.close()
            assert emitter.stderr is not None
            err = emitter.stderr.read()
            emitter.stderr.close()
        assert emitter.wait(30) == 0, err
        assert read_lines(out) == ["typed 0", "typed 1", "typed 2"]

    def test_last_line_without_newline_and_invalid_utf8(
        self, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """A final line with no newline counts; invalid UTF-8 stays visible as \\xNN."""
        out = tmp_path / "bytes.log"
        config = embedded_daemon(tmp_path, out, daemons)
        done = run_logfan("emit", "-c", str(config), stdin=b"caf\xe9 ok\r\nno newline")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: len(read_lines(out)) == 2, what="both lines")
        assert read_lines(out) == ["caf\\xe9 ok", "no newline"]


class TestConfirmWindow:
    """Confirms are awaited per window of envelopes, not per envelope, and all arrive."""

    def test_envelopes_are_pipelined_and_every_line_confirmed(
        self, rabbitmq: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """50 envelopes to a real RabbitMQ: up to WINDOW unconfirmed at once, all in the queue.

        How full the window gets depends on timing (py-amqp reads confirms already received
        whenever it publishes), so the test records when the emitter blocks for a confirm: only
        with WINDOW envelopes unconfirmed, never per envelope."""
        from logfan.daemon.config.loader import BrokerConfig
        from logfan.daemon.config.sink import SinkConfig
        from logfan.daemon.emit.emitter import WINDOW, Emitter

        name = f"window-{suffix()}"
        exchange = f"logfan-test-{name}"
        rabbitmq["queues"] += [f"logfan.{name}", f"logfan.{name}.dead"]
        rabbitmq["exchanges"].append(exchange)
        broker = BrokerConfig(url=rabbitmq["url"], exchange=exchange)
        sink = SinkConfig(name=name, type="file", options={"path": "/dev/null"})
        emitter = Emitter(broker, [sink], tag="window", severity="info")
        blocked_with: list[int] = []  # envelopes unconfirmed each time the emitter blocked

        def envelope(n: int) -> list[tuple[str, str]]:
            return [("2026-11-27T00:00:00.000Z", f"line {n}.{i}") for i in range(10)]

        try:
            emitter.send(envelope(0))  # connects: from now on, watch its waits for confirms
            drain = emitter._conn.drain_events

            def recording(**kwargs: Any) -> Any:
                blocked_with.append(len(emitter._window))
                return drain(**kwargs)

            monkeypatch.setattr(emitter._conn, "drain_events", recording)
            for n in range(1, 50):
                emitter.send(envelope(n))
                assert emitter.unconfirmed <= WINDOW * 10
            print(f"blocked with {blocked_with}")
            assert set(blocked_with) <= {WINDOW}, "the emitter waited before its window was full"
            emitter.flush()
            assert emitter.confirmed == 500
            assert emitter.unconfirmed == 0
        finally:
            emitter.close()
        from kombu import Connection

        with Connection(rabbitmq["url"]) as conn:
            depth = conn.channel().queue_declare(queue=f"logfan.{name}", passive=True)
        assert depth.message_count == 50
