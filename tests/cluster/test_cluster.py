"""logfan on a three-node RabbitMQ cluster of the module's own (never the shared broker).

One cluster is started for the whole module by ``deploy/cluster.sh`` (through
``rabbitcluster.py``), on loopback ports, and killed at the end. Each test uses its own exchange
and sink names, so the tests never see each other's queues. What is shown:

- a node stopped mid-stream of 30,000 lines and started again: daemon and emitter move to a
  live node by themselves, every confirmed line reaches both sinks (quorum queues);
- two daemons on one ``shared`` sink split the lines; one killed, the other takes over;
- ``per-host`` sinks: each daemon's host gets every line;
- a sink's queue type changed from classic to quorum on an existing queue: the daemon goes on
  on the existing queue and says how to migrate, instead of crash-looping;
- ``bench/cluster.py`` runs (a smoke run: nothing asserts a speed).

Lines are counted, not timed: every wait is a ``wait_for`` with a generous timeout, and the
figures (sent / delivered / lost / duplicated) are printed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from logfan_testkit import LOGFAN, Daemon, read_lines, run_logfan, suffix, wait_for
from rabbitcluster import ROOT, RabbitCluster, rabbit_cluster
from rabbitnode import SERVER

pytestmark = [pytest.mark.rabbitmq_node, pytest.mark.processes]

CHUNK = 100
PAUSE = 0.05  # 100 lines every 50 ms: a stream long enough to span what a test does to it


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitCluster]:
    """Three private nodes clustered by deploy/cluster.sh, for every test of the module."""
    if not Path(SERVER).exists():
        pytest.fail(f"{SERVER} is missing (run `make test`, which installs RabbitMQ)")
    started = time.monotonic()
    with rabbit_cluster(tmp_path_factory.mktemp("cluster"), size=3) as made:
        print(f"cluster of 3 nodes up in {time.monotonic() - started:.1f} s")
        yield made


class Stream:
    """``logfan emit`` fed numbered lines at a steady pace by a thread, like a long build."""

    def __init__(
        self, config: Path, workdir: Path, tag: str, total: int, hold_at: int | None = None
    ) -> None:
        self.lines = [f"{tag} {i:06d}" for i in range(total)]
        self.written = 0
        self.error: str | None = None
        #: feeding stops once ``hold_at`` lines are written, until release()
        self.hold_at = hold_at
        #: True once feeding stopped at ``hold_at``
        self.held = False
        self._limit = total if hold_at is None else hold_at  # lines it may write by now
        self._limit_changed = threading.Condition()
        self.stderr = workdir / f"emit-{tag}.err"
        with self.stderr.open("wb") as err:
            self.proc = subprocess.Popen(
                [*LOGFAN, "emit", "-c", str(config), "-t", tag, "--retry-for", "120"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        self._thread = threading.Thread(target=self._feed, daemon=True)
        self._thread.start()

    def _feed(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            for start in range(0, len(self.lines), CHUNK):
                with self._limit_changed:
                    if start >= self._limit and self._limit == self.hold_at:
                        self.held = True
                    while start >= self._limit:
                        self._limit_changed.wait()
                chunk = self.lines[start : start + CHUNK]
                stdin.write("".join(f"{line}\n" for line in chunk).encode())
                stdin.flush()
                self.written = start + len(chunk)
                time.sleep(PAUSE)
        except OSError as exc:  # the emitter died: the test reports it
            self.error = str(exc)
        finally:
            with contextlib.suppress(OSError):
                stdin.close()

    def _allow(self, lines: int) -> None:
        with self._limit_changed:
            self._limit = lines
            self._limit_changed.notify_all()

    def hold(self) -> None:
        """Stop feeding (after the chunk being written) until release(); the emitter waits."""
        self._allow(0)

    def release(self) -> None:
        """Feed on to the end (past ``hold_at`` too)."""
        self._allow(len(self.lines))

    def finish(self, timeout: float = 180) -> int:
        """Wait until every line was written and the emitter exited; its exit status."""
        self._thread.join(timeout)
        return self.proc.wait(timeout)

    def log(self) -> str:
        """What the emitter wrote to stderr."""
        return self.stderr.read_text(errors="replace")

    def kill(self) -> None:
        """Cleanup: the emitter, if still running."""
        self.release()
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def streams() -> Iterator[list[Stream]]:
    """Emitters a test starts; any still running at the end are killed."""
    started: list[Stream] = []
    yield started
    for stream in started:
        stream.kill()


def file_sink(path: Path) -> dict[str, Any]:
    """A file sink writing each line's message alone."""
    return {"type": "file", "path": str(path), "format": "{message}"}


def write_config(
    path: Path,
    urls: list[str],
    exchange: str,
    sinks: dict[str, dict[str, Any]],
    *,
    queue_type: str = "quorum",
    host: str = "a",
) -> Path:
    """A logfan config on the cluster's nodes (a URL list, quorum queues unless told
    otherwise), with its own status file."""
    doc = {
        "broker": {"url": urls, "exchange": exchange, "queue_type": queue_type, "heartbeat": 10},
        "daemon": {"host": host, "status_file": str(path.with_suffix(".status.json"))},
        "sinks": sinks,
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def events(daemon: Daemon) -> list[dict[str, Any]]:
    """The daemon's JSON log events."""
    out = []
    for line in daemon.logs().splitlines():
        with contextlib.suppress(ValueError):
            event = json.loads(line)
            if isinstance(event, dict):
                out.append(event)
    return out


def named(daemon: Daemon, event: str, sink: str | None = None) -> list[dict[str, Any]]:
    """The daemon's log events called ``event`` (of ``sink``, if given)."""
    return [
        e
        for e in events(daemon)
        if e.get("event") == event and (sink is None or e.get("sink") == sink)
    ]


def status(config: Path) -> dict[str, Any]:
    """The daemon's status file (empty while there is none)."""
    try:
        doc: dict[str, Any] = json.loads(config.with_suffix(".status.json").read_text())
    except (OSError, ValueError):
        return {}
    return doc


def tally(name: str, sent: list[str], got: list[str]) -> dict[str, int]:
    """Print and return sent / delivered / lost / duplicated / foreign of one sink's lines."""
    want = set(sent)
    unique = set(got)
    figures = {
        "sent": len(sent),
        "delivered": len(unique & want),
        "lost": len(want - unique),
        "duplicated": sum(1 for line in got if line in want) - len(unique & want),
        "foreign": len(unique - want),
    }
    print(f"sink {name}: " + " ".join(f"{k}={v}" for k, v in figures.items()))
    return figures


def queued(cluster: RabbitCluster, queues: list[str]) -> int:
    """Messages (ready and unacknowledged) in ``queues``, as the cluster reports them."""
    rows = cluster.ctl("list_queues", "name", "messages", "--no-table-headers")
    total = 0
    for row in rows.splitlines():
        name, _, count = row.partition("\t")
        if name in queues and count.strip().isdigit():
            total += int(count)
    return total


def port_of(url: str | None) -> int:
    """The port of an ``amqp://user:***@host:PORT//`` URL (0 if there is none)."""
    if not url:
        return 0
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


class TestNodeFailover:
    """A node of the cluster stopped and started again while 30,000 lines stream through."""

    TOTAL = 30_000

    def test_node_stopped_mid_stream_every_confirmed_line_arrives(
        self,
        cluster: RabbitCluster,
        tmp_path: Path,
        daemons: list[Daemon],
        streams: list[Stream],
    ) -> None:
        """Node 1 is listed first, so the daemon's two consumers and the emitter are all on it;
        it is stopped mid-stream and started again. Nobody is restarted by hand: the emitter
        exits 0, each consumer logs its move to another node (status file too), and both sinks
        hold every line (duplicates counted and printed).
        """
        run = suffix()
        stopped = cluster.nodes[0]
        files = {f"{x}-{run}": tmp_path / f"{x}.log" for x in ("a", "b")}
        config = write_config(
            tmp_path / "logfan.yaml",
            cluster.urls(first=0),
            f"lftest-{run}",
            {name: file_sink(path) for name, path in files.items()},
        )
        daemon = Daemon(config, tmp_path).start()
        daemons.append(daemon)
        wait_for(
            lambda: len(named(daemon, "consumer connected")) == len(files),
            timeout=60,
            what="both consumers connected",
        )
        # A stop can take longer than the rest of the stream on a busy machine (rabbitmqctl
        # starts an Erlang VM of its own): the stream then waits at 2/3 until node 1 is down,
        # so there is always something to send through the failover.
        stream = Stream(config, tmp_path, f"fail-{run}", self.TOTAL, hold_at=self.TOTAL * 2 // 3)
        streams.append(stream)
        wait_for(
            lambda: (
                stream.written >= self.TOTAL // 3 and all(read_lines(p) for p in files.values())
            ),
            timeout=60,
            what="a third of the lines written, both sinks writing",
        )
        before = cluster.connections()
        print(f"connections before the stop (server ports): {before}, node 1 is {stopped.port}")
        # the daemon's two consumers and the emitter: three connections at least, all on node 1
        assert before.count(stopped.port) >= 3, f"not all connected to node 1: {before}"

        at_stop = stream.written
        try:
            stopped.stop()  # graceful: rabbitmqctl stop
        finally:
            stream.release()
        if stream.held:
            print(f"the stop took longer than the stream: it waited at {stream.hold_at} lines")
        wait_for(
            lambda: all(named(daemon, "consumer reconnected", sink) for sink in files),
            timeout=90,
            what="both consumers reconnected to another node",
        )
        # Lines written to the emitter's pipe do not show it reconnected (the pipe holds
        # thousands while it retries); its own message does.
        wait_for(
            lambda: (
                "logfan emit: connected to" in stream.log()
                and (stream.written >= at_stop + 2_000 or stream.written == self.TOTAL)
            ),
            timeout=90,
            what="the emitter on another node and streaming again while node 1 is down",
        )
        stream.hold()  # an emitter that has sent everything exits: keep it while rabbitmqctl runs
        during = cluster.connections()
        stream.release()
        print(f"connections while node 1 is down (server ports): {during}")
        assert len(during) >= 3, f"daemon and emitter not all on the live nodes: {during}"
        at_start = stream.written
        stopped.start()  # it rejoins the cluster by itself
        code = stream.finish()
        emitter_log = stream.log()
        print(f"node 1 stopped after {at_stop}, started after {at_start} of {self.TOTAL} lines")
        print(f"emitter exit {code}, stderr: {emitter_log.strip() or '(nothing)'}")
        assert stream.error is None, f"writing to the emitter failed: {stream.error}"
        assert 0 < at_stop < at_start < self.TOTAL, "the stop was not mid-stream"
        assert code == 0, f"the emitter gave up: {emitter_log}"
        assert f":{stopped.port}/" in emitter_log.split("lost the broker at ", 1)[-1].split()[0], (
            f"the emitter says which node it lost: {emitter_log}"
        )
        assert "logfan emit: connected to amqp://" in emitter_log, "and which node it moved to"

        with contextlib.suppress(pytest.fail.Exception):  # the figures below say what is lost
            wait_for(
                lambda: all(len(set(read_lines(p))) >= self.TOTAL for p in files.values()),
                timeout=90,
                what="every line in both sinks",
            )
            wait_for(
                lambda: queued(cluster, [f"logfan.{name}" for name in files]) == 0,
                timeout=30,
                what="sink queues drained",
            )
        wait_for(
            lambda: (
                all(
                    port_of(s.get("node")) not in (0, stopped.port)
                    for s in status(config).get("sinks", {}).values()
                )
                and len(status(config).get("sinks", {})) == len(files)
            ),
            timeout=30,
            what="the status file showing each sink on another node",
        )
        shown = run_logfan("status", "-c", str(config)).stdout.decode()
        print(shown)
        assert "NODE" in shown.splitlines()[0]
        assert f"127.0.0.1:{stopped.port} " not in shown, "status shows each sink on its new node"
        sink_rows = [row for row in shown.splitlines()[1:] if row and ":" not in row.split()[0]]
        assert sink_rows, shown
        assert all(row.rstrip().endswith(" -") for row in sink_rows), "no stale LAST ERROR"
        alive = daemon.proc is not None and daemon.proc.poll() is None
        code = daemon.stop()

        report = {name: tally(name, stream.lines, read_lines(p)) for name, p in files.items()}
        assert alive, f"the daemon died: {daemon.logs()[-3000:]}"
        assert code == 0, "the daemon did not stop cleanly"
        for name, figures in report.items():
            assert figures["lost"] == 0, f"sink {name} lost lines: {report}"
            assert figures["foreign"] == 0, f"sink {name} has lines nobody sent: {report}"
        for sink in files:
            first = named(daemon, "consumer connected", sink)[0]
            moves = named(daemon, "consumer reconnected", sink)
            print(
                f"sink {sink}: connected to {first['url']}, then "
                + ", ".join(f"{m['url']} (down {m['down_for']} s)" for m in moves)
            )
            assert port_of(first["url"]) == stopped.port, f"{sink} did not start on node 1"
            assert named(daemon, "consumer disconnected", sink), f"{sink}: no disconnect logged"
            assert port_of(moves[0]["url"]) != stopped.port, f"{sink} did not move: {moves}"


class TestSharedScope:
    """Two daemons on one ``shared`` sink: they compete for one queue."""

    TOTAL = 20_000

    @staticmethod
    def start_pair(
        cluster: RabbitCluster, tmp_path: Path, daemons: list[Daemon]
    ) -> tuple[str, Path, dict[str, Path], dict[str, Daemon]]:
        """Daemons on hosts a and b, same config but their own file: the sink, the config for
        the emitter, each host's file and daemon (both consuming when this returns)."""
        run = suffix()
        sink = f"fwd-{run}"
        files = {host: tmp_path / f"fwd-{host}.log" for host in ("a", "b")}
        configs = {
            host: write_config(
                tmp_path / f"logfan-{host}.yaml",
                cluster.urls(first=0),
                f"lftest-{run}",
                {sink: {**file_sink(path), "scope": "shared"}},
                host=host,
            )
            for host, path in files.items()
        }
        started = {host: Daemon(config, tmp_path).start() for host, config in configs.items()}
        daemons.extend(started.values())
        wait_for(
            lambda: all(named(d, "consumer connected") for d in started.values()),
            timeout=60,
            what="both daemons consuming",
        )
        return sink, configs["a"], files, started

    def test_two_daemons_split_the_lines(
        self,
        cluster: RabbitCluster,
        tmp_path: Path,
        daemons: list[Daemon],
        streams: list[Stream],
    ) -> None:
        """20,000 lines through one shared queue consumed by two daemons: together they
        deliver every line, and each delivers a real share of them (split printed)."""
        sink, config, files, started = self.start_pair(cluster, tmp_path, daemons)
        stream = Stream(config, tmp_path, f"split-{sink}", self.TOTAL)
        streams.append(stream)
        assert stream.finish() == 0, stream.log()
        with contextlib.suppress(pytest.fail.Exception):
            wait_for(
                lambda: len({x for p in files.values() for x in read_lines(p)}) >= self.TOTAL,
                timeout=60,
                what="every line in one of the two files",
            )
        got = {host: read_lines(path) for host, path in files.items()}
        for daemon in started.values():
            assert daemon.stop() == 0
        union = [line for lines in got.values() for line in lines]
        figures = tally(f"{sink} (both daemons)", stream.lines, union)
        split = ", ".join(
            f"daemon {h}: {len(g)} lines ({100 * len(g) / self.TOTAL:.1f} %)"
            for h, g in got.items()
        )
        print(f"split: {split}")
        assert figures["lost"] == 0, f"lines lost: {figures}"
        assert figures["foreign"] == 0, f"lines nobody sent: {figures}"
        for host, lines in got.items():
            assert len(lines) > self.TOTAL // 10, f"daemon {host} got almost nothing: {split}"

    def test_one_daemon_killed_the_other_takes_over(
        self,
        cluster: RabbitCluster,
        tmp_path: Path,
        daemons: list[Daemon],
        streams: list[Stream],
    ) -> None:
        """Daemon a is SIGKILLed mid-stream: daemon b takes over the queue (a's unacknowledged
        messages included); the two files together hold every line, duplicates counted."""
        sink, config, files, started = self.start_pair(cluster, tmp_path, daemons)
        stream = Stream(config, tmp_path, f"kill-{sink}", self.TOTAL)
        streams.append(stream)
        wait_for(
            lambda: (
                stream.written >= self.TOTAL // 3 and all(read_lines(p) for p in files.values())
            ),
            timeout=60,
            what="a third of the lines written, both daemons writing",
        )
        at_kill = stream.written
        started["a"].kill()
        a_lines = read_lines(files["a"])
        assert stream.finish() == 0, stream.log()
        with contextlib.suppress(pytest.fail.Exception):
            wait_for(
                lambda: set(stream.lines) <= set(a_lines) | set(read_lines(files["b"])),
                timeout=60,
                what="every line in one of the two files",
            )
            wait_for(
                lambda: queued(cluster, [f"logfan.{sink}"]) == 0, timeout=30, what="queue drained"
            )
        b_lines = read_lines(files["b"])
        assert started["b"].stop() == 0
        figures = tally(f"{sink} (a until killed, then b)", stream.lines, a_lines + b_lines)
        in_both = len(set(a_lines) & set(b_lines))
        print(
            f"daemon a killed after {at_kill} of {self.TOTAL} lines written: a wrote "
            f"{len(a_lines)}, b wrote {len(b_lines)}; in both files: {in_both} lines (what a "
            "had written but not acknowledged when killed, redelivered to b)"
        )
        assert 0 < at_kill < self.TOTAL, "the kill was not mid-stream"
        assert figures["lost"] == 0, f"lines lost: {figures}"
        assert figures["foreign"] == 0, f"lines nobody sent: {figures}"
        left = set(stream.lines[at_kill:]) - set(a_lines)  # sent after the kill
        assert left, "daemon a wrote lines it cannot have received"
        assert left <= set(b_lines), "daemon b did not take over the lines sent after the kill"


class TestPerHostScope:
    """``per-host`` sinks on two daemons: each host's queue, each host's complete file."""

    TOTAL = 10_000

    def test_each_host_file_has_every_line(
        self,
        cluster: RabbitCluster,
        tmp_path: Path,
        daemons: list[Daemon],
    ) -> None:
        """Daemons a and b each own ``logfan.<sink>.<host>``; 10,000 lines emitted once reach
        both files, every one of them; the emitter declared no queue of its own for the sink."""
        run = suffix()
        sink = f"copy-{run}"
        files = {host: tmp_path / f"copy-{host}.log" for host in ("a", "b")}
        configs = {
            host: write_config(
                tmp_path / f"logfan-{host}.yaml",
                cluster.urls(first=i),
                f"lftest-{run}",
                {sink: {**file_sink(path), "scope": "per-host"}},
                host=host,
            )
            for i, (host, path) in enumerate(files.items())
        }
        started = {host: Daemon(config, tmp_path).start() for host, config in configs.items()}
        daemons.extend(started.values())
        wait_for(
            lambda: all(named(d, "consumer connected") for d in started.values()),
            timeout=60,
            what="both daemons consuming",
        )
        lines = [f"per-host {i:06d}" for i in range(self.TOTAL)]
        emitted = run_logfan(
            "emit", "-c", str(configs["a"]), "-t", "per-host", stdin="\n".join(lines).encode()
        )
        assert emitted.returncode == 0, emitted.stderr.decode()
        with contextlib.suppress(pytest.fail.Exception):
            wait_for(
                lambda: all(len(read_lines(p)) >= self.TOTAL for p in files.values()),
                timeout=60,
                what="every line in both hosts' files",
            )
        types = cluster.queue_types()
        for daemon in started.values():
            assert daemon.stop() == 0
        mine = {name: kind for name, kind in types.items() if sink in name}
        print(f"queues: {mine}")
        report = {
            host: tally(f"{sink} on {host}", lines, read_lines(p)) for host, p in files.items()
        }
        for host, figures in report.items():
            assert figures["lost"] == 0, f"host {host} lost lines: {report}"
            assert figures["foreign"] == 0, f"host {host} has lines nobody sent: {report}"
        assert mine.get(f"logfan.{sink}.a") == "quorum", mine
        assert mine.get(f"logfan.{sink}.b") == "quorum", mine
        assert f"logfan.{sink}" not in mine, f"a shared queue was declared: {mine}"


class TestQueueTypeChange:
    """A deployed classic queue, then the config asks for quorum (a move to a cluster)."""

    def test_daemon_keeps_delivering_on_the_existing_queue_and_says_how_to_migrate(
        self,
        cluster: RabbitCluster,
        tmp_path: Path,
        daemons: list[Daemon],
    ) -> None:
        """The queue stays classic; the daemon restarted on the quorum config logs the advice
        once, never disconnects (no crash loop: one connect in its status) and delivers the
        lines queued while it was down and those sent after."""
        run = suffix()
        sink = f"mig-{run}"
        path = tmp_path / "mig.log"
        config = tmp_path / "logfan.yaml"
        urls = cluster.urls(first=1)

        def emit(first: int, count: int) -> None:
            lines = "".join(f"mig {i:06d}\n" for i in range(first, first + count))
            done = run_logfan("emit", "-c", str(config), "-t", "mig", stdin=lines.encode())
            assert done.returncode == 0, done.stderr.decode()

        write_config(config, urls, f"lftest-{run}", {sink: file_sink(path)}, queue_type="classic")
        first = Daemon(config, tmp_path).start()
        daemons.append(first)
        wait_for(lambda: bool(named(first, "consumer connected")), what="first daemon consuming")
        emit(0, 1_000)
        wait_for(lambda: len(read_lines(path)) >= 1_000, what="1,000 lines on the classic queue")
        assert first.stop() == 0
        assert cluster.queue_types().get(f"logfan.{sink}") == "classic"

        # The deployment moves to quorum queues: the config changes, the daemon is restarted.
        write_config(config, urls, f"lftest-{run}", {sink: file_sink(path)}, queue_type="quorum")
        emit(1_000, 1_000)  # while the daemon is down: the emitter copes with the queue too
        second = Daemon(config, tmp_path).start()
        daemons.append(second)
        wait_for(lambda: bool(named(second, "consumer connected")), what="second daemon consuming")
        emit(2_000, 1_000)
        wait_for(lambda: len(set(read_lines(path))) >= 3_000, what="all 3,000 lines delivered")
        delivered_at = time.time()
        wait_for(
            lambda: status(config).get("written_at", 0) > delivered_at + 2,
            timeout=30,
            what="the status file rewritten after the last line",
        )
        figures = status(config)["sinks"][sink]
        alive = second.proc is not None and second.proc.poll() is None
        advice = named(second, "queue arguments differ from the config", sink)
        disconnects = named(second, "consumer disconnected", sink)
        code = second.stop()
        tally(sink, [f"mig {i:06d}" for i in range(3_000)], read_lines(path))
        print(f"advice logged: {advice[0]['advice'] if advice else None}")
        print(f"status: state={figures['state']} connects={figures['connects']}")
        assert alive, f"the daemon died on the quorum config: {second.logs()[-3000:]}"
        assert code == 0
        # once for the queue and once for its dead-letter queue, at the one connect
        about_queue = [a for a in advice if a["advice"].startswith(f"queue logfan.{sink} ")]
        about_dead = [
            a for a in advice if a["advice"].startswith(f"dead-letter queue logfan.{sink}.dead ")
        ]
        assert (len(about_queue), len(about_dead)) == (1, 1), f"advice logged: {advice}"
        assert f"rabbitmqctl delete_queue logfan.{sink}" in about_queue[0]["advice"]
        assert f"logfan dead {sink} --replay" in about_dead[0]["advice"]
        assert not disconnects, f"the consumer disconnected: {disconnects}"
        assert figures["connects"] == 1, f"reconnected {figures['connects'] - 1} times"
        assert figures["state"] == "consuming"
        assert cluster.queue_types().get(f"logfan.{sink}") == "classic"


class TestClusterBench:
    """``bench/cluster.py``: the throughput comparison still runs (figures printed only)."""

    def test_bench_smoke_run(self, cluster: RabbitCluster, tmp_path: Path) -> None:
        """20,000 lines through a single node (classic, quorum) and through the cluster
        (quorum); each row is printed with a rate, none is asserted."""
        out = tmp_path / "bench.json"
        with rabbit_cluster(tmp_path / "single", size=1) as single:
            done = subprocess.run(
                [
                    sys.executable,
                    str(ROOT / "bench" / "cluster.py"),
                    "--lines",
                    "20000",
                    "--json",
                    str(out),
                    "--single",
                    single.nodes[0].url,
                    "--cluster",
                    *cluster.urls(),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        print(done.stdout)
        assert done.returncode == 0, f"bench failed:\n{done.stdout}\n{done.stderr}"
        rows = json.loads(out.read_text())
        assert [(r["target"], r["queue_type"]) for r in rows] == [
            ("single node", "classic"),
            ("single node", "quorum"),
            ("3-node cluster", "quorum"),
        ]
        assert all(r["lines"] == 20_000 and r["rate"] > 0 for r in rows), rows
