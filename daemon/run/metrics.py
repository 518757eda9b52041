"""Prometheus metrics: each worker counts into a shared folder, the supervisor serves them all.

A sink's counters live in its worker process. They are prometheus_client counters in
multiprocess mode: each worker writes its values into a memory-mapped file of its own in a
folder the supervisor makes at start, so a count survives the worker (a crash, ``kill -9``, a
restart) and the supervisor's HTTP endpoint sums every file a worker of this daemon ever wrote.
Counters therefore never go backwards within one daemon run; a new run starts from zero, as
Prometheus' ``rate()`` expects. What only the supervisor knows (backlog, held, state, restarts,
reloads) it serves itself, from the figures its workers report.
"""

from __future__ import annotations

import contextlib
import glob
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from logfan.daemon.consume import counters
from logfan.daemon.consume.counters import ENV
from logfan.daemon.consume.figures import SinkState

__all__ = ["DaemonRow", "MetricsServer", "SinkRow"]


@dataclass(frozen=True)
class SinkRow:
    """What the supervisor knows of one sink, as its metrics show it."""

    name: str
    type: str
    state: SinkState
    backlog: int | None
    held: int
    #: wall-clock time of the last batch written (None: none yet in this run)
    written_at: float | None
    restarts: int


@dataclass(frozen=True)
class DaemonRow:
    """What the supervisor knows of itself."""

    started_at: float
    reloads_ok: int = 0
    reloads_refused: int = 0
    last_reload_at: float | None = None


class _Collector:
    """The supervisor's own metrics, built from the rows it last handed over."""

    def __init__(self) -> None:
        self.sinks: tuple[SinkRow, ...] = ()
        self.daemon = DaemonRow(started_at=time.time())

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (  # noqa: PLC0415
            CounterMetricFamily,
            GaugeMetricFamily,
        )

        sinks, daemon = self.sinks, self.daemon  # one consistent view
        yield GaugeMetricFamily("logfan_up", "1 while the daemon runs.", value=1)
        info = GaugeMetricFamily(
            "logfan_build_info", "The daemon's version.", labels=["version", "python"]
        )
        info.add_metric([_version(), platform.python_version()], 1)
        yield info
        yield GaugeMetricFamily(
            "logfan_start_time_seconds", "When the daemon started.", value=daemon.started_at
        )
        reloads = CounterMetricFamily(
            "logfan_reloads", "Config reloads, by result.", labels=["result"]
        )
        reloads.add_metric(["ok"], daemon.reloads_ok)
        reloads.add_metric(["refused"], daemon.reloads_refused)
        yield reloads
        if daemon.last_reload_at is not None:
            yield GaugeMetricFamily(
                "logfan_last_reload_timestamp_seconds",
                "When the config was last reloaded (or refused).",
                value=daemon.last_reload_at,
            )
        yield from _sink_families(sinks)


def _sink_families(sinks: Iterable[SinkRow]) -> Iterator[Any]:
    from prometheus_client.core import (  # noqa: PLC0415
        CounterMetricFamily,
        GaugeMetricFamily,
    )

    labels = ["sink", "type"]
    restarts = CounterMetricFamily(
        "logfan_sink_worker_restarts", "Times the sink's worker was started again.", labels=labels
    )
    backlog = GaugeMetricFamily(
        "logfan_sink_backlog", "Messages waiting in the sink's queue.", labels=labels
    )
    held = GaugeMetricFamily(
        "logfan_sink_held", "Messages the worker holds, not yet acknowledged.", labels=labels
    )
    written = GaugeMetricFamily(
        "logfan_sink_last_write_timestamp_seconds",
        "When the sink last wrote a batch.",
        labels=labels,
    )
    state = GaugeMetricFamily(
        "logfan_sink_state", "1 for the sink's current state.", labels=[*labels, "state"]
    )
    for row in sinks:
        key = [row.name, row.type]
        restarts.add_metric(key, row.restarts)
        held.add_metric(key, row.held)
        if row.backlog is not None:
            backlog.add_metric(key, row.backlog)
        if row.written_at is not None:
            written.add_metric(key, row.written_at)
        for each in SinkState:
            state.add_metric([*key, each.value], 1 if each == row.state else 0)
    yield from (restarts, backlog, held, written, state)


def _version() -> str:
    try:
        return metadata.version("logfan")
    except metadata.PackageNotFoundError:
        return "unknown"


#: a daemon run's folder of metric files is named PREFIX + its pid + "." + random letters.
PREFIX = "logfan-metrics."


def sweep_stale(parent: str) -> None:
    """Remove the folders that daemons killed without a chance to clean up left in ``parent``."""
    for path in glob.glob(os.path.join(parent, f"{PREFIX}*.*")):
        pid = os.path.basename(path)[len(PREFIX) :].split(".")[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass  # another user's daemon, alive


class MetricsServer:
    """The ``/metrics`` endpoint, in a thread of the supervisor."""

    def __init__(self) -> None:
        self.collector = _Collector()
        self.url: str | None = None
        self._server: Any = None
        self._thread: Any = None

    def prepare(self) -> None:
        """Make this run's folder for the workers' metric files (before any worker forks)."""
        if counters.folder is not None:
            return
        if "prometheus_client" in sys.modules and ENV not in os.environ:
            raise RuntimeError("prometheus_client was imported before the metrics folder was set")
        parent = os.environ.get("RUNTIME_DIRECTORY") or tempfile.gettempdir()
        sweep_stale(parent)
        counters.folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}.", dir=parent)
        os.environ[ENV] = counters.folder

    def serve(self, address: tuple[str, int]) -> str:
        """Listen on ``address``; returns the URL. Raises OSError (say, the port is taken)."""
        from prometheus_client import CollectorRegistry, start_http_server  # noqa: PLC0415
        from prometheus_client.multiprocess import MultiProcessCollector  # noqa: PLC0415

        self.prepare()
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=counters.folder)  # type: ignore[no-untyped-call]
        registry.register(self.collector)
        host, port = address
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        bound = self._server.server_address
        shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
        self.url = f"http://{shown}:{bound[1]}/metrics"
        return self.url

    @property
    def serving(self) -> bool:
        """Whether the endpoint is up."""
        return self._server is not None

    def update(self, sinks: Iterable[SinkRow], daemon: DaemonRow) -> None:
        """Hand over the supervisor's current view (a whole new tuple: no lock needed)."""
        self.collector.sinks = tuple(sinks)
        self.collector.daemon = daemon

    def forget(self, pids: Iterable[int]) -> None:
        """Drop the metric files of these workers (a sink removed by a reload)."""
        if counters.folder is None:
            return
        for pid in pids:
            for path in glob.glob(os.path.join(counters.folder, f"*_{pid}.db")):
                with contextlib.suppress(OSError):
                    os.remove(path)

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
            self.url = None

    def close(self) -> None:
        """Stop listening and remove this run's metric files."""
        self.stop()
        if counters.folder is not None:
            shutil.rmtree(counters.folder, ignore_errors=True)
            os.environ.pop(ENV, None)
            counters.folder = None
