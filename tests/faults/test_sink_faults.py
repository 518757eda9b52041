"""Fault suite, sinks and the daemon: poison lines, full queues, graceful stop, kill -9."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest
from logfan_testkit import (
    LOGFAN,
    Daemon,
    Setup,
    TcpSyslogListener,
    feed,
    log_events,
    process_tree,
    read_lines,
    run_logfan,
    tally,
    wait_for,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]


class TestPoisonLine:
    """A line one sink cannot take is dead-lettered after N tries; nothing else is held back."""

    def test_poison_line_is_dead_lettered_listed_and_replayed(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """After max_retries the line goes to logfan.<sink>.dead; --replay delivers it later."""
        picky, plain = setup.sink("picky"), setup.sink("plain")
        reject = setup.tmp / "reject.txt"
        reject.write_text("POISON\n")
        picky_out, plain_out = setup.tmp / "picky.log", setup.tmp / "plain.log"
        config = setup.config(
            {
                picky: {
                    "type": "picky",
                    "path": str(picky_out),
                    "reject_file": str(reject),
                    "max_retries": 3,
                },
                plain: {"type": "file", "path": str(plain_out), "format": "{message}"},
            }
        )
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        sent = [f"line {i}" if i != 500 else "line 500 POISON" for i in range(1000)]
        emitted = run_logfan("emit", "-c", str(config), stdin="\n".join(sent).encode())
        assert emitted.returncode == 0, emitted.stderr
        wait_for(lambda: len(read_lines(plain_out)) == 1000, what="the plain sink")
        wait_for(lambda: len(read_lines(picky_out)) == 999, what="the picky sink")
        wait_for(lambda: len(log_events(daemon, "line dead-lettered")) == 1, what="dead letter")
        # ValueError is no error of the sink contract: a plugin's bug, shown with its traceback,
        # once for the three tries and the line-by-line pass that all met it
        (bug,) = log_events(daemon, "sink raised an unexpected error")
        assert (bug["sink"], bug["sink_type"], bug["error_type"]) == (picky, "picky", "ValueError")
        frames = bug["exception"][0]["frames"]
        assert frames[-1]["name"] == "write", "the traceback ends in the plugin's write"

        listed = run_logfan("dead", "-c", str(config), picky)
        assert listed.returncode == 0, listed.stderr
        out = listed.stdout.decode()
        assert len(out.splitlines()) == 1
        assert "line 500 POISON\t# ValueError: cannot handle 'line 500 POISON'" in out
        assert read_lines(picky_out) == [s for s in sent if "POISON" not in s]

        reject.write_text("")  # the sink is fixed
        replayed = run_logfan("dead", "-c", str(config), picky, "--replay")
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout.decode() == (
            f"replayed 1 line(s) from logfan.{picky}.dead to logfan.{picky}\n"
        )
        wait_for(lambda: len(read_lines(picky_out)) == 1000, what="the replayed line")
        assert read_lines(picky_out)[-1] == "line 500 POISON"
        assert run_logfan("dead", "-c", str(config), picky).stdout == b""
        assert daemon.stop() == 0
        for name, path in ((picky, picky_out), (plain, plain_out)):
            _, lost, duplicated = tally(name, sent, read_lines(path))
            assert (lost, duplicated) == (0, 0)
        assert read_lines(plain_out) == sent

    def test_a_foreign_message_in_the_dead_letter_queue_is_listed_and_replayed(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """Messages dead-lettered as they were published (a quorum queue's delivery limit does
        that): one with ``content_encoding: latin-1`` (over AMQP its body arrives as text, not
        bytes), one with no content type but the AMQP properties a line takes its tag, msgid
        and time from. `logfan dead` lists them as text and `--replay` puts them back as they
        were: same text, same tag, msgid and time."""
        sink = setup.sink("foreign")
        out = setup.tmp / "foreign.log"
        fmt = "{timestamp} {tag} {msgid} {message}"
        config = setup.config({sink: {"type": "file", "path": str(out), "format": fmt}})
        assert run_logfan("dead", "-c", str(config), sink).returncode == 0  # declares the queues
        dead = f"logfan.{sink}.dead"
        setup.publish_raw(
            "café".encode("latin-1"), dead, content_type="text/plain", content_encoding="latin-1"
        )
        setup.publish_raw(b"bare", dead, app_id="billing", message_id="m-7", timestamp=1700000000)
        listed = run_logfan("dead", "-c", str(config), sink)
        assert listed.returncode == 0, listed.stderr
        rows = [row.split("\t")[0] for row in listed.stdout.decode().splitlines()]
        assert [row.rsplit(": ", 1)[-1] for row in rows] == ["café", "bare"], listed.stdout
        replayed = run_logfan("dead", "-c", str(config), sink, "--replay")
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout.decode() == f"replayed 2 line(s) from {dead} to logfan.{sink}\n"
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: len(read_lines(out)) == 2, what="the replayed lines")
        first, second = read_lines(out)
        assert first.endswith(" café")
        assert second == "2023-11-14T22:13:20.000Z billing m-7 bare"
        assert daemon.stop() == 0


class TestBoundedQueue:
    """max_queue drops the oldest lines into the dead-letter queue, and only for that sink."""

    def test_full_queue_drops_oldest_into_dead_letters(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """Sink down, queue bounded at 100: the rest are dead-lettered, one warning, no loss."""
        bounded, full = setup.sink("bounded"), setup.sink("full")
        down = setup.tmp / "down"
        down.write_text("")
        bounded_out, full_out = setup.tmp / "bounded.log", setup.tmp / "full.log"
        config = setup.config(
            {
                bounded: {
                    "type": "picky",
                    "path": str(bounded_out),
                    "down_file": str(down),
                    "max_queue": 100,
                },
                full: {"type": "file", "path": str(full_out), "format": "{message}"},
            },
            prefetch=10,
        )
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: len(log_events(daemon, "consumer connected")) == 2, what="consumers")
        sent = [f"msg {i:04d}" for i in range(1000)]
        setup.publish_many([s.encode() for s in sent])
        wait_for(lambda: read_lines(full_out) == sent, what="the unbounded sink")
        dead_queue = f"logfan.{bounded}.dead"
        wait_for(lambda: setup.queue_depth(f"logfan.{bounded}") == 100, what="the bound")
        wait_for(lambda: setup.queue_depth(dead_queue) >= 890, what="the dropped lines")
        full_event = "queue full: dropping its oldest lines into the dead-letter queue"
        wait_for(lambda: bool(log_events(daemon, full_event)), what="the warning")
        down.unlink()  # the target is back
        dead = setup.queue_depth(dead_queue)
        wait_for(lambda: len(read_lines(bounded_out)) == 1000 - dead, what="the kept lines")
        listed = run_logfan("dead", "-c", str(config), bounded)
        dropped = [
            line.split(": ", 1)[1].split("\t")[0] for line in listed.stdout.decode().splitlines()
        ]
        assert all(
            "queue logfan." in line and "was full" in line
            for line in listed.stdout.decode().splitlines()
        )
        warnings = log_events(daemon, full_event)
        assert daemon.stop() == 0
        kept = read_lines(bounded_out)
        print(f"bounded sink: kept={len(kept)} dropped={len(dropped)} warnings={len(warnings)}")
        assert len(warnings) == 1
        assert sorted(kept + dropped) == sent, "every line is either delivered or dead-lettered"
        assert kept[-100:] == sent[-100:], "the newest lines are the ones kept"
        assert max(dropped) < sent[-100], "only older lines were dropped"
        tally(full, sent, read_lines(full_out))


class TestGracefulStop:
    """SIGTERM with a backlog: in-flight lines written and acked, the rest stays queued."""

    def test_sigterm_with_20000_queued_then_restart_loses_nothing(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """Exit 0 (the supervisor exits 1 if consumers are not done within 8 s), then no loss."""
        sink = setup.sink("drain")
        out = setup.tmp / "drain.log"
        config = setup.config({sink: {"type": "file", "path": str(out), "format": "{message}"}})
        assert run_logfan("check", "-c", str(config)).returncode == 0
        first = Daemon(config, setup.tmp).start()
        daemons.append(first)
        wait_for(lambda: len(log_events(first, "consumer connected")) == 1, what="the queue")
        assert first.stop() == 0
        sent = [f"queued {i}" for i in range(20_000)]
        setup.publish_many([line.encode() for line in sent])  # one line per message
        second = Daemon(config, setup.tmp).start()
        daemons.append(second)
        wait_for(lambda: len(read_lines(out)) > 0, what="draining to start")
        assert second.stop(timeout=30) == 0, second.logs()
        at_stop = len(read_lines(out))
        third = Daemon(config, setup.tmp).start()
        daemons.append(third)
        wait_for(lambda: len(set(read_lines(out))) == len(sent), what="the rest of the backlog")
        wait_for(lambda: len(log_events(third, "consumer connected")) == 1, what="third start")
        assert third.stop() == 0
        print(f"lines written before SIGTERM took effect: {at_stop} of {len(sent)}")
        _, lost, duplicated = tally(sink, sent, read_lines(out))
        assert lost == 0
        assert duplicated == 0, "a graceful stop acks what it wrote"
        assert read_lines(out) == sent


class TestKillDaemon:
    """kill -9 of the daemon mid-stream, then a restart: every line, duplicates bounded."""

    def test_kill_9_mid_stream_on_rabbitmq(
        self, rabbitmq: dict[str, Any], tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """50,000 lines streamed; daemon killed at about 10,000; restart; nothing lost."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        one, two = setup.sink("one"), setup.sink("two")
        outs = {one: tmp_path / "one.log", two: tmp_path / "two.log"}
        prefetch = 50
        config = setup.config(
            {
                name: {"type": "file", "path": str(p), "format": "{message}"}
                for name, p in outs.items()
            },
            prefetch=prefetch,
        )
        daemon = Daemon(config, tmp_path).start()
        daemons.append(daemon)
        wait_for(lambda: len(log_events(daemon, "consumer connected")) == 2, what="consumers")
        sent = [f"kill9 {i}" for i in range(50_000)]
        emitter = subprocess.Popen([*LOGFAN, "emit", "-c", str(config)], stdin=subprocess.PIPE)
        writer = threading.Thread(target=feed, args=(emitter, sent, 500, 0.02))
        writer.start()
        wait_for(lambda: len(read_lines(outs[one])) >= 10_000, what="10,000 lines")
        assert daemon.kill() == -signal.SIGKILL  # supervisor and workers at once
        restarted = Daemon(config, tmp_path).start()
        daemons.append(restarted)
        writer.join()
        assert emitter.wait(120) == 0
        for path in outs.values():
            wait_for(lambda p=path: len(set(read_lines(p))) >= len(sent), what="every line")  # type: ignore[misc]
        assert restarted.stop() == 0
        for name, path in outs.items():
            _, lost, duplicated = tally(name, sent, read_lines(path))
            assert lost == 0
            # What the killed daemon wrote but had not acked: at most prefetch messages.
            assert duplicated <= prefetch * 1000


def peak_rss_kib(pid: int) -> int:
    """Peak resident memory (VmHWM) of the daemon and its sink workers, summed, in KiB.

    The sum counts pages the workers share with the supervisor once per process: an upper bound.
    """
    total = 0
    for member in process_tree(pid):
        lines = Path(f"/proc/{member}/status").read_text().splitlines()
        total += next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))
    return total


class TestSinkTargetDown:
    """One sink's target down: the others never wait; it catches up, in order, when back."""

    def test_syslog_listener_down_then_back(self, setup: Setup, daemons: list[Daemon]) -> None:
        """Files get every line while the TCP listener is closed; syslog catches up after."""
        listener = TcpSyslogListener()
        try:
            one, two, remote = setup.sink("one"), setup.sink("two"), setup.sink("remote")
            outs = {one: setup.tmp / "one.log", two: setup.tmp / "two.log"}
            sinks: dict[str, dict[str, Any]] = {
                name: {"type": "file", "path": str(p), "format": "{message}"}
                for name, p in outs.items()
            }
            sinks[remote] = {"type": "syslog", "address": f"tcp://127.0.0.1:{listener.port}"}
            config = setup.config(sinks, prefetch=100)
            daemon = Daemon(config, setup.tmp).start()
            daemons.append(daemon)
            before = [f"before {i}" for i in range(100)]
            assert (
                run_logfan("emit", "-c", str(config), stdin="\n".join(before).encode()).returncode
                == 0
            )
            wait_for(lambda: listener.messages() == before, what="syslog before the outage")
            listener.close()
            during = [f"during {i}" for i in range(5000)]
            setup.publish_many([line.encode() for line in during])  # one line per message
            for path in outs.values():
                wait_for(lambda p=path: len(read_lines(p)) == 5100, what="files during the outage")  # type: ignore[misc]
            assert listener.messages() == before, "the listener was down: nothing reached it"
            assert daemon.proc is not None
            peak = peak_rss_kib(daemon.proc.pid)
            backlog = setup.queue_depth(f"logfan.{remote}")
            print(
                f"during the outage: syslog backlog {backlog} messages, daemon peak RSS {peak} KiB"
            )
            listener.open()
            sent = before + during
            wait_for(lambda: set(listener.messages()) >= set(sent), what="syslog to catch up")
            assert daemon.stop() == 0
            got = listener.messages()
            first_seen = list(dict.fromkeys(got))
            assert first_seen == sent, "the syslog sink caught up in order"
            for name, path in outs.items():
                assert read_lines(path) == sent
                tally(name, sent, read_lines(path))
            _, lost, _ = tally(remote, sent, got)
            assert lost == 0
            assert backlog > 0, "the outage really held lines back in the broker"
            assert peak < 300 * 1024, "the daemon's memory stays bounded while a sink is down"
        finally:
            listener.close()


class TestReceiverNotReading:
    """A TCP syslog receiver that accepts and never reads: nothing is counted as delivered."""

    def test_nothing_counted_until_the_receiver_reads(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """The sink retries (the receiver did not take its batch), delivered stays 0 and the
        lines wait; once the receiver reads, every line arrives. The file sink never waits."""
        listener = TcpSyslogListener(reading=False, rcvbuf=1024)
        try:
            remote, local = setup.sink("remote"), setup.sink("local")
            out = setup.tmp / "local.log"
            config = setup.config(
                {
                    remote: {"type": "syslog", "address": f"tcp://127.0.0.1:{listener.port}"},
                    local: {"type": "file", "path": str(out), "format": "{message}"},
                }
            )
            status = setup.tmp / "status.json"
            config.write_text(config.read_text() + f"daemon: {{status_file: '{status}'}}\n")
            daemon = Daemon(config, setup.tmp).start()
            daemons.append(daemon)
            sent = [f"line {i:05d} " + "x" * 80 for i in range(20_000)]
            emitted = run_logfan("emit", "-c", str(config), stdin="\n".join(sent).encode())
            assert emitted.returncode == 0, emitted.stderr
            wait_for(lambda: read_lines(out) == sent, what="the file sink")

            def remote_figures() -> dict[str, Any]:
                try:
                    return dict(json.loads(status.read_text())["sinks"][remote])
                except (OSError, ValueError, KeyError):
                    return {}

            wait_for(
                lambda: "did not take" in str(remote_figures().get("last_error")),
                timeout=90,
                what="the syslog sink to say its receiver does not read",
            )
            figures = remote_figures()
            assert figures["state"] == "retrying"
            assert figures["delivered"] == 0, "nothing the receiver did not take is delivered"
            assert setup.queue_depth(f"logfan.{remote}") + figures["held"] > 0
            listener.read()
            wait_for(
                lambda: set(listener.messages()) >= set(sent),
                timeout=120,
                what="every line once the receiver reads",
            )
            assert daemon.stop() == 0, daemon.logs()
            _, lost, _ = tally(remote, sent, listener.messages())
            assert lost == 0
        finally:
            listener.close()


class TestDeadWorker:
    """A sink's worker that dies anyway is restarted by the supervisor, which says why."""

    def test_thread_ended_by_a_plugin_is_restarted(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """SystemExit from a sink ends its thread; the supervisor restarts it; nothing lost."""
        sink, other = setup.sink("crashy"), setup.sink("other")
        crash = setup.tmp / "crash"
        out, other_out = setup.tmp / "crashy.log", setup.tmp / "other.log"
        config = setup.config(
            {
                sink: {"type": "picky", "path": str(out), "crash_file": str(crash)},
                other: {"type": "file", "path": str(other_out), "format": "{message}"},
            }
        )
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        crash.write_text("")
        sent = [f"survive {i}" for i in range(100)]
        assert run_logfan("emit", "-c", str(config), stdin="\n".join(sent).encode()).returncode == 0
        wait_for(lambda: read_lines(out) == sent, what="the restarted consumer")
        assert not crash.exists(), "the sink really crashed once"
        restarts = log_events(daemon, "sink worker died; restarting it")
        assert [(r["sink"], r["exit_code"]) for r in restarts] == [(sink, 1)]
        assert daemon.stop() == 0
        assert read_lines(other_out) == sent
        tally(sink, sent, read_lines(out))
