"""Fault suite, embedded broker: many emitters, deep backlogs, kill -9 of the daemon or an emitter.

Everything runs for real: ``logfan run`` and ``logfan emit`` as processes, the spool folder of
the embedded broker (``filesystem://``), file sinks. Figures are printed, never asserted on.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from logfan_testkit import LOGFAN, Daemon, read_lines, run_logfan, tally, wait_for, write_config

from logfan.daemon.broker.spool.files import decode_payload
from logfan.daemon.broker.spool.transport import Transport

pytestmark = [pytest.mark.processes]

#: most lines the emitter promises per message (emitter.MAX_BATCH_LINES); a flood can get more
#: today, as one 64 KiB read goes into one message whole (see the figure TestKillEmitter prints)
LINES_PER_MESSAGE = 1000
#: a file sink line with format "{msgid} {message}": the emitter's batch id, the line's index
MSGID_LINE = re.compile(r"([0-9a-f]{32})-(\d+) (.*)")


def file_sinks(tmp_path: Path, names: list[str], fmt: str = "{message}") -> dict[str, Any]:
    """One file sink per name, writing ``tmp_path/<name>.log``."""
    return {n: {"type": "file", "path": str(tmp_path / f"{n}.log"), "format": fmt} for n in names}


def embedded_config(tmp_path: Path, sinks: dict[str, Any], **broker: Any) -> Path:
    """A config on the embedded broker spooling in ``tmp_path/spool``."""
    url = f"filesystem://{tmp_path}/spool"
    return write_config(tmp_path / "logfan.yaml", url, "logs", sinks, **broker)


def has_lines(path: Path, lines: list[str]) -> Callable[[], bool]:
    """A predicate: ``path`` has each of ``lines`` (once or more)."""
    want = set(lines)
    return lambda: len(read_lines(path)) >= len(want) and set(read_lines(path)) >= want


def start_emitter(config: Path) -> subprocess.Popen[bytes]:
    """``logfan emit -c CONFIG`` reading its stdin from a pipe."""
    return subprocess.Popen(
        [*LOGFAN, "emit", "-c", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def numbered(count: int, start: int = 0) -> list[str]:
    """The lines ``line <start>`` ... of a stream."""
    return [f"line {i}" for i in range(start, start + count)]


class Feeder(threading.Thread):
    """Writes ``line 0``, ``line 1``... to an emitter's stdin in chunks of 250, then closes it."""

    def __init__(self, proc: subprocess.Popen[bytes], count: int, pause: float) -> None:
        super().__init__(daemon=True)
        self.proc, self.count, self.pause = proc, count, pause
        self.written = 0  # lines written to the pipe so far

    def run(self) -> None:
        assert self.proc.stdin is not None
        try:
            for start in range(0, self.count, 250):
                part = numbered(min(250, self.count - start), start)
                self.proc.stdin.write(("\n".join(part) + "\n").encode())
                self.proc.stdin.flush()
                self.written += len(part)
                time.sleep(self.pause)
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):  # the emitter was killed, its pipe closed by reap()
            return


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Kill ``proc`` if it still runs and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with suppress(BrokenPipeError):  # unflushed input for a dead process
                pipe.close()


def written_unacked(inflight: Path, queue: str, out: Path, limit: float = 30) -> None:
    """Return once ``out`` grew while ``queue``'s consumer held claims (written, not acked).

    A tight loop: the window is a sink's fsync. Gives up after ``limit`` seconds.
    """
    deadline = time.monotonic() + limit
    claimed_at_size: int | None = None
    while time.monotonic() < deadline:
        if not any(inflight.glob(f"*/{queue}/*.msg")):
            claimed_at_size = None
            continue
        size = out.stat().st_size
        if claimed_at_size is None:
            claimed_at_size = size
        elif size > claimed_at_size:
            return
    pytest.fail(f"never saw {out.name} written while {queue} had unacked messages")


def held_lines(spool: Path, queue: str) -> int:
    """Lines in the messages of ``queue`` claimed by any consumer and not acknowledged."""
    total = 0
    for claimed in spool.glob(f"inflight/*/{queue}/*.msg"):
        payload = decode_payload(claimed.read_bytes())
        total += len(json.loads(payload["body"])["lines"])
    return total


def fill_backlog(spool: Path, queue: str, lines: list[str]) -> None:
    """Queue one plain-text message per line straight into the spool, as any publisher could."""
    with Connection(transport=Transport, transport_options={"root": str(spool)}) as conn:
        channel = conn.channel()
        for line in lines:
            payload = channel.prepare_message(
                line.encode(), content_type="text/plain", content_encoding="utf-8"
            )
            channel._inplace_augment_message(payload, "logs", "")
            channel._put(queue, payload)


class TestManyEmitters:
    """Emitters publishing at once into the embedded broker, the daemon consuming."""

    def test_eight_emitters_at_once_every_line_exactly_once_per_sink(
        self, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """8 emitters x 10,000 lines at once: each sink has every line exactly once, in order."""
        names = ["one", "two"]
        config = embedded_config(tmp_path, file_sinks(tmp_path, names))
        daemons.append(Daemon(config, tmp_path).start())
        sent_by = {k: [f"e{k}-{i}" for i in range(10_000)] for k in range(8)}
        emitters = [start_emitter(config) for _ in sent_by]
        results: dict[int, tuple[int | None, bytes]] = {}

        def run(k: int, proc: subprocess.Popen[bytes]) -> None:
            _, err = proc.communicate(("\n".join(sent_by[k]) + "\n").encode(), timeout=120)
            results[k] = (proc.returncode, err)

        threads = [threading.Thread(target=run, args=item) for item in enumerate(emitters)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert {k: rc for k, (rc, _) in results.items()} == dict.fromkeys(sent_by, 0), results
        sent = [line for lines in sent_by.values() for line in lines]
        for name in names:
            out = tmp_path / f"{name}.log"
            wait_for(has_lines(out, sent), what=f"sink {name}")
        assert daemons[0].stop() == 0, daemons[0].logs()
        for name in names:
            got = read_lines(tmp_path / f"{name}.log")
            _, lost, duplicated = tally(name, sent, got)
            assert (lost, duplicated) == (0, 0)
            assert sorted(got) == sorted(sent)
            for k, lines in sent_by.items():  # one consumer, one folder: each emitter's order kept
                assert [line for line in got if line.startswith(f"e{k}-")] == lines


class TestOneDaemonPerSpool:
    """Two daemons on one spool would split its queues between them: the second is refused."""

    def test_second_daemon_refused_naming_the_first(
        self, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """`logfan run` on a spool in use exits 1 at once, naming the running daemon's pid."""
        config = embedded_config(tmp_path, file_sinks(tmp_path, ["one"]))
        first = Daemon(config, tmp_path).start()
        daemons.append(first)
        assert first.proc is not None
        wait_for(lambda: "logfan ready" in first.logs(), what="the first daemon")
        second = subprocess.run(
            [*LOGFAN, "run", "-c", str(config)], capture_output=True, timeout=30, check=False
        )
        assert second.returncode == 1
        assert second.stderr.decode() == (
            f"logfan run: another logfan run (pid {first.proc.pid}) is using the spool "
            f"{tmp_path}/spool\n"
        )
        assert first.proc.poll() is None, "the running daemon goes on"
        assert first.stop() == 0


class TestDeepBacklog:
    """A deep queue drains whole and in order (its cost per get is in bench/spool.py)."""

    def test_100000_message_backlog_arrives_whole_and_in_order(
        self, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """100,000 one-line messages queued before the daemon starts: every line is written,
        once, in the order it was queued."""
        depth = 100_000
        config = embedded_config(tmp_path, file_sinks(tmp_path, ["backlog"]), prefetch=100)
        out = tmp_path / "backlog.log"
        lines = [f"b{i:06d}" for i in range(depth)]  # 8 bytes a line with its newline
        fill_backlog(tmp_path / "spool", "logfan.backlog", lines)
        daemon = Daemon(config, tmp_path).start()
        daemons.append(daemon)

        def drained() -> bool:
            if daemon.proc is None or daemon.proc.poll() is not None:
                pytest.fail(f"the daemon exited: {daemon.logs()}")
            return out.exists() and out.stat().st_size >= 8 * depth

        wait_for(drained, timeout=600, what=f"the backlog of {depth:,} to drain")
        assert daemon.stop() == 0, daemon.logs()
        got = read_lines(out)
        tally(f"backlog-{depth}", lines, got)
        assert got == lines


class TestKillDaemon:
    """kill -9 of the daemon while lines stream in; a restart delivers everything."""

    def test_kill_9_mid_stream_then_restart_every_line_duplicates_bounded(
        self, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """50,000 lines, the daemon killed mid-stream: all arrive, duplicates <= unacked lines.

        Sink one fsyncs each batch before it is acked, and the kill aims at that window: its
        file has grown while its consumer still holds claimed messages, so they come twice.
        What the dead daemon held is counted before the restart: only that can repeat.
        """
        names, prefetch = ["one", "two"], 5
        sinks = file_sinks(tmp_path, names)
        sinks["one"]["fsync"] = True
        config = embedded_config(tmp_path, sinks, prefetch=prefetch)
        spool = tmp_path / "spool"
        daemons.append(Daemon(config, tmp_path).start())
        sent = numbered(50_000)
        emitter = start_emitter(config)
        try:
            feeder = Feeder(emitter, len(sent), pause=0.02)  # 4 s at least
            feeder.start()
            one = tmp_path / "one.log"
            wait_for(
                lambda: feeder.written >= 20_000 and len(read_lines(one)) >= 1_000,
                what="20,000 lines fed and 1,000 delivered",
            )
            written_unacked(spool / "inflight", "logfan.one", one)
            assert daemons[0].kill() == -signal.SIGKILL  # supervisor and workers at once
            at_kill, delivered_at_kill = feeder.written, len(read_lines(one))
            held = {name: held_lines(spool, f"logfan.{name}") for name in names}
            daemons.append(Daemon(config, tmp_path).start())
            feeder.join()
            assert emitter.wait(120) == 0, emitter.stderr.read() if emitter.stderr else ""
        finally:
            reap(emitter)
        for name in names:
            wait_for(has_lines(tmp_path / f"{name}.log", sent), what=f"sink {name}")
        assert daemons[1].stop() == 0, daemons[1].logs()
        # a batch is written, then acked: only what the dead daemon held unacked can repeat
        bound = prefetch * LINES_PER_MESSAGE
        print(
            f"daemon killed with {at_kill:,} of {len(sent):,} lines fed, {delivered_at_kill:,} "
            f"in sink one; lines held unacked: {held}; never more than {bound:,} (prefetch "
            f"{prefetch} x {LINES_PER_MESSAGE:,} lines a message at most)"
        )
        for name in names:
            got = read_lines(tmp_path / f"{name}.log")
            _, lost, duplicated = tally(name, sent, got)
            assert lost == 0
            assert duplicated <= held[name] <= bound
            assert set(got) == set(sent)


class TestKillEmitter:
    """kill -9 of an emitter while it streams: what it published arrives whole, nothing torn."""

    def test_kill_9_emitter_mid_stream_delivers_whole_batches_prefix(
        self, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """Delivered lines are a prefix of what was fed, in whole batches, none malformed.

        The emitter gets a pause-free stream of a million lines, so it is busy reading and
        publishing, and far from the end, when it is killed after 200,000 were fed.
        """
        config = embedded_config(tmp_path, file_sinks(tmp_path, ["one"], "{msgid} {message}"))
        daemon = Daemon(config, tmp_path).start()
        daemons.append(daemon)
        out = tmp_path / "one.log"
        ready = run_logfan("emit", "-c", str(config), "READY")
        assert ready.returncode == 0, ready.stderr
        wait_for(lambda: len(read_lines(out)) == 1, what="the daemon to consume")
        emitter = start_emitter(config)
        try:
            feeder = Feeder(emitter, 1_000_000, pause=0)
            feeder.start()
            wait_for(lambda: feeder.written >= 200_000, what="200,000 lines fed")
            os.kill(emitter.pid, signal.SIGKILL)
            assert emitter.wait(10) == -signal.SIGKILL
            feeder.join()
        finally:
            reap(emitter)
        assert feeder.written < feeder.count, "the emitter had finished: not killed mid-stream"
        torn = list((tmp_path / "spool" / "queues" / "logfan.one").glob("*.tmp"))
        # a line published after the emitter died comes after everything it published
        sentinel = run_logfan("emit", "-c", str(config), "END")
        assert sentinel.returncode == 0, sentinel.stderr
        wait_for(lambda: any(line.endswith(" END") for line in read_lines(out)), what="END")
        assert daemon.stop() == 0, daemon.logs()
        got = read_lines(out)
        assert got[0].endswith(" READY")
        assert got[-1].endswith(" END")
        parsed = [MSGID_LINE.fullmatch(line) for line in got[1:-1]]
        assert all(parsed), [line for line, m in zip(got[1:], parsed, strict=False) if not m][:5]
        messages = [m.group(3) for m in parsed if m]
        batches: list[tuple[str, int]] = []  # (batch id, lines), in delivery order
        for m in parsed:
            assert m is not None
            batch, index = m.group(1), int(m.group(2))
            if index == 0:
                assert batch not in {b for b, _ in batches}, f"batch {batch} delivered twice"
                batches.append((batch, 1))
            else:  # a batch's lines arrive together and in order, from its first
                assert batches, f"a batch starting past its first line: {m.group(0)}"
                assert batches[-1] == (batch, index), f"torn batch at {m.group(0)}"
                batches[-1] = (batch, index + 1)
        assert messages == numbered(len(messages))
        tally("one", numbered(feeder.written), messages)
        print(
            f"emitter killed after {feeder.written:,} lines were fed to it"
            f"{' (mid-write: a torn .tmp was left)' if torn else ''}: {len(messages):,} "
            f"delivered in {len(batches)} whole batches (the largest {max(n for _, n in batches):,}"
            f" lines), exactly its first {len(messages):,} lines; the "
            f"{feeder.written - len(messages):,} 'lost' were fed but never confirmed (in the pipe "
            f"or in the emitter when it died)"
        )
