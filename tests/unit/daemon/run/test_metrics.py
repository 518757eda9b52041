"""The supervisor's own metrics: names, labels and values as Prometheus reads them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from logfan.daemon.consume.figures import SinkState
from logfan.daemon.run.metrics import PREFIX, DaemonRow, MetricsServer, SinkRow, sweep_stale


def scrape(server: MetricsServer) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(server.collector)
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(sink: str = "all", **more: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"sink": sink, "type": "file", **more}.items()))


def test_sinks_and_daemon() -> None:
    server = MetricsServer()
    server.update(
        [
            SinkRow("all", "file", SinkState.RETRYING, 120, 7, 1_700_000_000.5, 2),
            SinkRow("new", "file", SinkState.STARTING, None, 0, None, 0),
        ],
        DaemonRow(started_at=1_699_999_000.0, reloads_ok=3, reloads_refused=1, last_reload_at=5.0),
    )
    got = scrape(server)
    assert got[("logfan_up", ())] == 1
    assert got[("logfan_reloads_total", (("result", "ok"),))] == 3
    assert got[("logfan_reloads_total", (("result", "refused"),))] == 1
    assert got[("logfan_last_reload_timestamp_seconds", ())] == 5.0
    assert got[("logfan_start_time_seconds", ())] == 1_699_999_000.0
    assert got[("logfan_sink_worker_restarts_total", labels())] == 2
    assert got[("logfan_sink_backlog", labels())] == 120
    assert got[("logfan_sink_held", labels())] == 7
    assert got[("logfan_sink_last_write_timestamp_seconds", labels())] == 1_700_000_000.5
    states = {
        dict(key[1])["state"]: value
        for key, value in got.items()
        if key[0] == "logfan_sink_state" and dict(key[1])["sink"] == "all"
    }
    assert states == {state.value: float(state == SinkState.RETRYING) for state in SinkState}
    # a sink with no backlog figure yet, and no write yet, has no such series (not a false 0)
    assert ("logfan_sink_backlog", labels("new")) not in got
    assert ("logfan_sink_last_write_timestamp_seconds", labels("new")) not in got
    assert got[("logfan_sink_held", labels("new"))] == 0
    build = [key for key in got if key[0] == "logfan_build_info"]
    assert len(build) == 1
    assert dict(build[0][1])["version"]


def test_no_reload_yet_means_no_reload_time() -> None:
    server = MetricsServer()
    assert ("logfan_last_reload_timestamp_seconds", ()) not in scrape(server)


def test_folders_of_dead_daemons_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    gone = tmp_path / f"{PREFIX}{dead.pid}.abc"
    alive = tmp_path / f"{PREFIX}{os.getppid()}.def"
    other = tmp_path / "logfan-metrics-notes"
    for folder in (gone, alive, other):
        folder.mkdir()
    sweep_stale(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name])
