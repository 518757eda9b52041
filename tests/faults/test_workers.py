"""Sink worker processes: one killed is restarted; a killed supervisor takes its workers along.

Each sink runs in a worker process of its own (``logfan:NAME`` in ``ps -o comm``). These tests
kill processes for real (SIGKILL) on both brokers and count what reached each sink.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from logfan_testkit import (
    LOGFAN,
    Daemon,
    Setup,
    feed,
    log_events,
    read_lines,
    tally,
    wait_for,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]

LINES_PER_MESSAGE = 1000  # what one emitter message holds at most


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def worker_of(daemon: Daemon, sink: str) -> int:
    """The process id of ``sink``'s worker, found by its name as ``ps -o comm`` shows it."""
    named = [pid for pid in daemon.workers() if comm(pid) == f"logfan:{sink}"[:15]]
    assert len(named) == 1, {pid: comm(pid) for pid in daemon.workers()}
    return named[0]


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def two_files(setup: Setup, prefetch: int) -> tuple[dict[str, Path], Path]:
    one, two = setup.sink("one"), setup.sink("two")
    outs = {one: setup.tmp / "one.log", two: setup.tmp / "two.log"}
    config = setup.config(
        {name: {"type": "file", "path": str(p), "format": "{message}"} for name, p in outs.items()},
        prefetch=prefetch,
    )
    return outs, config


class TestWorkerKilled:
    def test_a_killed_worker_is_restarted_and_nothing_is_lost(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """SIGKILL one sink's worker mid-stream: restarted, every line, the other sink untouched."""
        prefetch = 5
        outs, config = two_files(setup, prefetch)
        one, two = list(outs)
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: len(log_events(daemon, "consumer connected")) == 2, what="consumers")
        assert sorted(comm(pid) for pid in daemon.workers()) == sorted(
            f"logfan:{name}"[:15] for name in outs
        ), "one worker process per sink, named after it"
        victim = worker_of(daemon, one)
        sent = [f"worker {i}" for i in range(20_000)]
        emitter = subprocess.Popen([*LOGFAN, "emit", "-c", str(config)], stdin=subprocess.PIPE)
        writer = threading.Thread(target=feed, args=(emitter, sent, 200, 0.01))
        writer.start()
        wait_for(lambda: len(read_lines(outs[one])) >= 2_000, what="2,000 lines in sink one")
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: len(log_events(daemon, "sink worker died; restarting it")) == 1,
            what="the supervisor to see the dead worker",
        )
        writer.join()
        assert emitter.wait(120) == 0
        for path in outs.values():
            wait_for(lambda p=path: set(read_lines(p)) >= set(sent), what="every line")  # type: ignore[misc]
        replacement = worker_of(daemon, one)
        assert daemon.stop() == 0, daemon.logs()
        died = log_events(daemon, "sink worker died; restarting it")
        assert [(e["sink"], e["exit_code"]) for e in died] == [(one, -signal.SIGKILL)]
        assert replacement != victim
        _, lost, duplicated = tally(one, sent, read_lines(outs[one]))
        assert lost == 0
        # what the killed worker had written but not acked comes again: at most prefetch messages
        assert duplicated <= prefetch * LINES_PER_MESSAGE
        assert read_lines(outs[two]) == sent, "the other sink's worker never noticed"


class TestSupervisorKilled:
    def test_workers_stop_with_their_supervisor_and_ack_what_they_wrote(
        self, setup: Setup, daemons: list[Daemon]
    ) -> None:
        """SIGKILL of the supervisor alone: its workers stop by themselves, cleanly (the kernel's
        parent-death signal), so nothing is orphaned, nothing lost and nothing written twice."""
        outs, config = two_files(setup, prefetch=50)
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: len(log_events(daemon, "consumer connected")) == 2, what="consumers")
        workers = daemon.workers()
        assert len(workers) == 2
        sent = [f"orphan {i}" for i in range(20_000)]
        emitter = subprocess.Popen([*LOGFAN, "emit", "-c", str(config)], stdin=subprocess.PIPE)
        writer = threading.Thread(target=feed, args=(emitter, sent, 200, 0.01))
        writer.start()
        first = next(iter(outs.values()))
        wait_for(lambda: len(read_lines(first)) >= 2_000, what="2,000 lines")
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        wait_for(lambda: not any(alive(pid) for pid in workers), what="the workers to stop")
        writer.join()
        assert emitter.wait(120) == 0
        restarted = Daemon(config, setup.tmp).start()
        daemons.append(restarted)
        for path in outs.values():
            wait_for(lambda p=path: set(read_lines(p)) >= set(sent), what="every line")  # type: ignore[misc]
        assert restarted.stop() == 0
        for name, path in outs.items():
            _, lost, duplicated = tally(name, sent, read_lines(path))
            assert lost == 0
            assert duplicated == 0, "a worker whose supervisor died still acks what it wrote"
            assert read_lines(path) == sent
