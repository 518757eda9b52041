"""logrotate and `tail -F` against a real daemon under load: what lands where, what tail sees."""

from __future__ import annotations

import collections
import dataclasses
import gzip
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from logfan_testkit import LOGFAN, Daemon, Setup, read_lines, run_logfan, tail_f, wait_for
from tail_caught_up import printed

pytestmark = [pytest.mark.logrotate, pytest.mark.rabbitmq, pytest.mark.processes]

LINES = 30_000
#: lines fed between two logrotate runs at least, so every case rotates many times mid-stream.
PART = 1_500
CHUNK = 100
END = "END"
LINE = re.compile(rb"\A(\d{6}|END)\Z")
SENT = [f"{i:06d}" for i in range(LINES)]
#: deploy/logfan.logrotate as shipped, made to work on the test's folder and daemon.
SHIPPED = Path(__file__).parents[2] / "deploy" / "logfan.logrotate"
#: the prerotate hook that holds each rotation until `tail -F` has caught up (see its docstring)
TAIL_CAUGHT_UP = Path(__file__).parents[1] / "tail_caught_up.py"
#: logrotate `create` racing the sink, which re-creates the file itself: no line is lost, but
#: logrotate moves the sink's new file aside as *.backup and says so (why the snippet has nocreate).
CREATE_RACE = "already exists, renaming to"


@dataclasses.dataclass(frozen=True)
class Case:
    """How one run rotates: logrotate directives (None: none; empty: the shipped snippet)."""

    name: str
    directives: list[str] | None = None
    rotate: dict[str, Any] | None = None


CREATE = Case("create", ["create"])
CREATE_COMPRESS = Case("create-compress", ["create", "compress", "delaycompress"])
SHIPPED_CASE = Case("shipped", [])
COPYTRUNCATE = Case("copytruncate", ["copytruncate"])
COPYTRUNCATE_COMPRESS = Case("copytruncate-compress", ["copytruncate", "compress"])
BUILTIN = Case("builtin", rotate={"max_bytes": "24KiB", "keep": 1000})
BUILTIN_COMPRESS = Case(
    "builtin-compress", rotate={"max_bytes": "24KiB", "keep": 1000, "compress": True}
)


class LogrotateLoop:
    """`logrotate -f -s STATE CONF` run over and over in a thread; counts runs and failures."""

    def __init__(self, conf: Path, state: Path) -> None:
        self.argv = ["logrotate", "-f", "-s", str(state), str(conf)]
        self.runs = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            done = subprocess.run(self.argv, capture_output=True, check=False, timeout=60)
            if done.returncode != 0 or done.stderr:
                self.failures.append(done.stderr.decode(errors="replace"))
            self.runs += 1
            self._stop.wait(0.02)

    def wait_for_next_run(self) -> None:
        """Return once logrotate has started and finished at least one more run."""
        seen = self.runs
        wait_for(lambda: self.runs >= seen + 2, what="logrotate to run")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def logrotate_conf(path: Path, case: Case, pid: int, prerotate: str) -> str:
    """The case's logrotate config for ``path`` with the ``prerotate`` command; the shipped
    snippet signals ``pid``."""
    if case.directives:
        lines = ["rotate 1000", "missingok", "notifempty", *case.directives]
        lines += ["prerotate", f"    {prerotate}", "endscript"]
        return f"{path} {{\n" + "".join(f"    {d}\n" for d in lines) + "}\n"
    text = SHIPPED.read_text()
    for old, new in (
        ("/var/log/logfan/*.log", f"{path.parent}/*.log"),
        ("rotate 14", "rotate 1000"),  # keep every rotated file to count its lines
        ("systemctl reload logfan.service", f"kill -HUP {pid}"),
        (
            "    postrotate\n",
            f"    prerotate\n        {prerotate}\n    endscript\n    postrotate\n",
        ),
    ):
        assert old in text, f"{SHIPPED} no longer says {old!r}: update this test"
        text = text.replace(old, new)
    return text


def ranges(lines: list[str]) -> str:
    """``000100-000199,000500-000599``: numbered lines as runs."""
    runs: list[list[int]] = []
    for n in map(int, lines):
        if runs and runs[-1][1] == n - 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(f"{a:06d}-{b:06d}" if a != b else f"{a:06d}" for a, b in runs)


@dataclasses.dataclass
class Census:
    """The lines found in some files: counted, plus torn lines and NUL bytes."""

    counts: collections.Counter[str]
    #: complete lines that are not a sent line: a line broken inside a file
    torn: list[bytes]
    nul_bytes: int
    #: a file that does not end with a newline ends with half a line: its first part
    tails: list[bytes] = dataclasses.field(default_factory=list)

    @classmethod
    def of(cls, blobs: list[bytes]) -> Census:
        counts: collections.Counter[str] = collections.Counter()
        torn: list[bytes] = []
        tails: list[bytes] = []
        for blob in blobs:
            *lines, rest = blob.split(b"\n")
            torn += [line for line in lines if not LINE.match(line)]
            if rest:
                tails.append(rest)
            counts.update(line.decode() for line in lines if LINE.match(line))
        return cls(counts, torn, sum(blob.count(b"\0") for blob in blobs), tails)

    def tally(self, what: str) -> tuple[int, list[str], int]:
        """Print and return ``(present, lost lines, duplicated)`` against SENT."""
        present = [s for s in SENT if self.counts[s]]
        lost = [s for s in SENT if not self.counts[s]]
        duplicated = sum(self.counts[s] - 1 for s in present)
        print(
            f"{what}: sent={len(SENT)} present={len(present)} lost={len(lost)} "
            f"duplicated={duplicated} torn={len(self.torn)} cut_tails={len(self.tails)} "
            f"nul_bytes={self.nul_bytes}" + (f" lost_lines={ranges(lost)}" if lost else "")
        )
        return len(present), lost, duplicated


@dataclasses.dataclass
class Outcome:
    """What one run left: the files' census, tail's census, rotated files holding lines."""

    files: Census
    tail: Census
    rotations: int


def all_files(path: Path) -> list[bytes]:
    """The live file and every rotated one (``.gz`` decompressed), oldest first."""
    blobs = []
    for f in sorted(path.parent.glob(path.name + "*"), key=lambda p: p.stat().st_mtime):
        data = f.read_bytes()
        blobs.append(gzip.decompress(data) if f.suffix == ".gz" else data)
    return blobs


def ends_with(path: Path, line: str) -> bool:
    """True once the last line written to ``path`` is ``line`` (however broken what precedes it)."""
    try:
        return path.read_bytes().endswith(f"{line}\n".encode())
    except FileNotFoundError:
        return False


def stream(config: Path, between_parts: Callable[[str], None]) -> None:
    """Pipe SENT into `logfan emit` in small chunks, calling ``between_parts`` every PART with
    the last line sent."""
    errors = config.with_name("emit.err")
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [*LOGFAN, "emit", "-c", str(config), "-t", "load"], stdin=subprocess.PIPE, stderr=err
        )
    assert proc.stdin is not None
    with proc.stdin:
        for i in range(0, len(SENT), CHUNK):
            proc.stdin.write(("\n".join(SENT[i : i + CHUNK]) + "\n").encode())
            proc.stdin.flush()
            if (i + CHUNK) % PART == 0:
                between_parts(SENT[i + CHUNK - 1])
            time.sleep(0.002)
    assert proc.wait(120) == 0, errors.read_text()


def run_case(setup: Setup, daemons: list[Daemon], case: Case) -> Outcome:
    """Stream SENT through a daemon's file sink while rotating, with `tail -F` reading it."""
    path = setup.tmp / "logs" / "out.log"
    sink: dict[str, Any] = {"type": "file", "path": str(path), "format": "{message}"}
    if case.rotate is not None:
        sink["rotate"] = case.rotate
    config = setup.config({setup.sink("out"): sink})
    # tail -F on a path that does not exist yet silently polls once a second instead of using
    # inotify, and then misses whole rotated files: start it, as a reader would, on a file.
    path.parent.mkdir()
    path.touch(0o640)
    daemon = Daemon(config, setup.tmp).start()
    daemons.append(daemon)
    capture = setup.tmp / "tail.out"
    with capture.open("wb") as out, (setup.tmp / "tail.err").open("wb") as err:
        tail = tail_f(path, out, err)
    loop: LogrotateLoop | None = None
    races: list[str] = []
    try:
        if case.directives is not None:
            assert daemon.proc is not None
            conf = setup.tmp / "logrotate.conf"
            # Each rotation first waits for tail -F to catch up with the file (tail misses a
            # file created and renamed away while it was not scheduled: TAIL_CAUGHT_UP).
            hook = f"{sys.executable} -I {TAIL_CAUGHT_UP} {tail.pid} {capture} {path}"
            conf.write_text(logrotate_conf(path, case, daemon.proc.pid, hook))
            loop = LogrotateLoop(conf, setup.tmp / "logrotate.state")
        if loop is not None:
            stream(config, lambda _: loop.wait_for_next_run())
        else:
            # Built-in rotation happens between batches: a daemon that lags under load takes
            # few, large batches and rotates less. Waiting for each part to be written bounds a
            # batch to a part (about 10 KiB), so every run rotates several times. Waiting for
            # tail to print it too keeps tail within one rotation (24 KiB) of the sink.
            stream(
                config,
                lambda last: wait_for(
                    lambda: ends_with(path, last) and printed(capture, last.encode()), what=last
                ),
            )
        if loop is not None:
            loop.stop()
            races = [f for f in loop.failures if CREATE_RACE in f]
            assert [f for f in loop.failures if CREATE_RACE not in f] == []
        # One queue is written in order: once END is in the file, every line before it is.
        assert run_logfan("emit", "-c", str(config), END).returncode == 0
        wait_for(lambda: ends_with(path, END), what="the last line in the file")
        wait_for(lambda: ends_with(capture, END), what="tail -F to print the last line")
    finally:
        tail.terminate()
        tail.wait(10)
    print(f"tail -F said (its end):\n{(setup.tmp / 'tail.err').read_text()[-2000:]}")
    assert daemon.stop() == 0
    blobs = all_files(path)
    outcome = Outcome(
        Census.of(blobs), Census.of([capture.read_bytes()]), sum(map(bool, blobs)) - 1
    )
    runs = f" logrotate_runs={loop.runs} create_races={len(races)}" if loop else ""
    print(
        f"\ncase {case.name} on {setup.url.split(':')[0]}: rotated_files={outcome.rotations}{runs}"
    )
    return outcome


def check_every_line_once(outcome: Outcome) -> None:
    """Every line exactly once across the files, whole, and printed once by tail -F."""
    _, lost, duplicated = outcome.files.tally("files")
    _, tail_lost, tail_duplicated = outcome.tail.tally("tail -F")
    assert outcome.rotations >= 5
    files = outcome.files
    assert (lost, duplicated, files.torn, files.tails, files.nul_bytes) == ([], 0, [], [], 0)
    assert (tail_lost, tail_duplicated, outcome.tail.torn) == ([], 0, [])


class TestLogrotateCreate:
    """logrotate `create` (rename, new file) with no SIGHUP: the inode check alone suffices."""

    @pytest.mark.parametrize("case", [CREATE, CREATE_COMPRESS], ids=lambda c: c.name)
    def test_every_line_once_across_rotations(
        self, setup: Setup, daemons: list[Daemon], case: Case
    ) -> None:
        """Before each batch the sink sees the rename and moves on: nothing lost or doubled."""
        check_every_line_once(run_case(setup, daemons, case))


class TestShippedLogrotate:
    """deploy/logfan.logrotate (rename, nocreate, delaycompress, reload) under the same load."""

    def test_every_line_once_across_rotations(self, setup: Setup, daemons: list[Daemon]) -> None:
        """Each rotation ends with SIGHUP (reload and reopen): every line once, tail sees all."""
        check_every_line_once(run_case(setup, daemons, SHIPPED_CASE))


class TestLogrotateCopytruncate:
    """logrotate `copytruncate`: loses what lands between its copy and its truncate, by design."""

    @pytest.mark.parametrize("case", [COPYTRUNCATE, COPYTRUNCATE_COMPRESS], ids=lambda c: c.name)
    def test_no_hole_no_torn_line_and_loss_counted(
        self, setup: Setup, daemons: list[Daemon], case: Case
    ) -> None:
        """O_APPEND: no NUL-filled gap, no line broken inside a file, no duplicate; lost lines
        are counted. A copy that logrotate took while a batch was being written may end with
        the first part of a line (its rest went with the truncate): counted and shown, and it
        can only be the unterminated end of a rotated copy (the live file ends whole)."""
        outcome = run_case(setup, daemons, case)
        present, _, duplicated = outcome.files.tally("files")
        outcome.tail.tally("tail -F")
        files = outcome.files
        if files.tails:
            print(f"copies cut in the middle of a line: {files.tails!r}")
        assert outcome.rotations >= 5
        assert (duplicated, files.torn, files.nul_bytes) == (0, [], 0)
        assert all(any(s.encode().startswith(t) for s in SENT) for t in files.tails)
        assert present > LINES // 2


class TestBuiltinRotation:
    """The file sink's own `rotate:` under the same load, no logrotate."""

    @pytest.mark.parametrize("case", [BUILTIN, BUILTIN_COMPRESS], ids=lambda c: c.name)
    def test_every_line_once_across_rotations(
        self, setup: Setup, daemons: list[Daemon], case: Case
    ) -> None:
        """Rotation happens between two batches in the writing thread: nothing falls between."""
        check_every_line_once(run_case(setup, daemons, case))


class TestSighup:
    """SIGHUP (`systemctl reload`) makes the file sink close and reopen its file."""

    def test_sighup_reopens_the_file(self, tmp_path: Path, daemons: list[Daemon]) -> None:
        """After SIGHUP the daemon lives on, closes its file (inotify CLOSE_WRITE) and writes on;
        without reopen() a running daemon never closes a file that was not moved."""
        from watchdog.events import FileClosedEvent, FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        setup = Setup(f"filesystem://{tmp_path}/spool", tmp_path, None)
        path = tmp_path / "logs" / "out.log"
        config = setup.config({"out": {"type": "file", "path": str(path), "format": "{message}"}})
        daemon = Daemon(config, tmp_path).start()
        daemons.append(daemon)
        assert run_logfan("emit", "-c", str(config), "before").returncode == 0
        wait_for(lambda: read_lines(path) == ["before"], what="the first line")

        closed: list[str] = []

        class Closes(FileSystemEventHandler):
            def on_closed(self, event: FileSystemEvent) -> None:
                if isinstance(event, FileClosedEvent):
                    closed.append(os.fsdecode(event.src_path))

        observer = Observer()
        observer.schedule(Closes(), str(path.parent))
        observer.start()
        try:
            assert daemon.proc is not None
            daemon.proc.send_signal(signal.SIGHUP)
            assert run_logfan("emit", "-c", str(config), "after").returncode == 0
            wait_for(lambda: read_lines(path) == ["before", "after"], 20, "the second line")
            wait_for(lambda: str(path) in closed, 20, "the sink to close its file")
        finally:
            observer.stop()
            observer.join()
        assert daemon.proc.poll() is None, daemon.logs()[-2000:]
        assert daemon.stop() == 0
