"""Prometheus metrics, scraped by a real Prometheus server (Debian's, unpacked by `make test`):
each sink's delivered count equals the lines in its file, through a worker's kill -9."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from logfan_testkit import Daemon, Setup, read_lines, run_logfan, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes, pytest.mark.prometheus]

PROMETHEUS = Path(__file__).parents[2] / ".venv" / "prometheus" / "usr" / "bin" / "prometheus"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Prometheus:
    """A Prometheus server on loopback scraping one target every second."""

    def __init__(self, tmp: Path, target: str) -> None:
        assert PROMETHEUS.exists(), "prometheus is missing: `make test` unpacks it"
        self.port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
                    "scrape_configs": [
                        {"job_name": "logfan", "static_configs": [{"targets": [target]}]}
                    ],
                }
            )
        )
        self.log = (tmp / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(PROMETHEUS),
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for(self.ready, what="Prometheus to be ready")

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as resp:
            return resp.read()

    def ready(self) -> bool:
        try:
            return b"Ready" in self._get("/-/ready")
        except OSError:
            return False

    def query(self, expr: str) -> dict[str, float]:
        """An instant query's result by its ``sink`` label."""
        body = json.loads(self._get("/api/v1/query?" + urllib.parse.urlencode({"query": expr})))
        assert body["status"] == "success", body
        return {r["metric"].get("sink", ""): float(r["value"][1]) for r in body["data"]["result"]}

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self.log.close()


@pytest.fixture
def prometheus_for() -> Iterator[list[Prometheus]]:
    started: list[Prometheus] = []
    yield started
    for server in started:
        with contextlib.suppress(Exception):
            server.close()


def metrics_url(status_file: Path) -> str | None:
    try:
        doc = json.loads(status_file.read_text())
    except (OSError, ValueError):
        return None
    return (doc.get("metrics") or {}).get("url")


def worker_of(daemon: Daemon, sink: str) -> int:
    """The pid of ``sink``'s worker (its process is named ``logfan:SINK``, cut to 15 bytes)."""
    for pid in daemon.workers():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == f"logfan:{sink}"[:15]:
                return pid
    raise AssertionError(f"no worker for {sink}")


def test_prometheus_counts_equal_the_files_through_a_worker_kill(
    setup: Setup, daemons: list[Daemon], prometheus_for: list[Prometheus]
) -> None:
    names = {"all": setup.sink("a"), "plain": setup.sink("p"), "errors": setup.sink("e")}
    files = {key: setup.tmp / f"{key}.log" for key in names}
    status_file = setup.tmp / "status.json"
    config = setup.config(
        {
            names["all"]: {"type": "file", "path": str(files["all"])},
            names["plain"]: {"type": "file", "path": str(files["plain"]), "format": "{message}"},
            names["errors"]: {
                "type": "file",
                "path": str(files["errors"]),
                "select": {"min_severity": "err"},
            },
        },
        daemon={"status_file": str(status_file), "metrics": "127.0.0.1:0"},
    )
    daemon = Daemon(config, setup.tmp).start()
    daemons.append(daemon)
    wait_for(lambda: metrics_url(status_file) is not None, what="the metrics endpoint")
    url = urllib.parse.urlsplit(str(metrics_url(status_file)))
    prometheus = Prometheus(setup.tmp, str(url.netloc))
    prometheus_for.append(prometheus)

    def emit(first: int, count: int, severity: str = "info") -> None:
        lines = "\n".join(f"line {i}" for i in range(first, first + count))
        out = run_logfan("emit", "-c", str(config), "-p", severity, stdin=lines.encode())
        assert out.returncode == 0, out.stderr

    def delivered() -> dict[str, float]:
        found = prometheus.query("logfan_sink_lines_delivered_total")
        return {key: found.get(name, -1) for key, name in names.items()}

    emit(0, 25_000)
    emit(25_000, 100, "err")
    wait_for(lambda: len(read_lines(files["plain"])) >= 25_100, what="the first half")
    victim = worker_of(daemon, names["all"])
    os.kill(victim, signal.SIGKILL)
    wait_for(
        lambda: prometheus.query("logfan_sink_worker_restarts_total").get(names["all"]) == 1,
        what="the worker to be started again (and scraped)",
    )
    assert worker_of(daemon, names["all"]) != victim
    emit(25_100, 24_900)
    wait_for(
        lambda: (
            len(read_lines(files["all"])) >= 50_000 and len(read_lines(files["plain"])) >= 50_000
        ),
        what="every line in every file",
    )
    in_files = {key: len(read_lines(path)) for key, path in files.items()}
    assert in_files["errors"] == 100
    wait_for(lambda: delivered() == in_files, what="Prometheus to see what the files hold")
    assert set(read_lines(files["plain"])) == {f"line {i}" for i in range(50_000)}
    # counters never went backwards, through the kill and the new worker
    resets = prometheus.query("resets(logfan_sink_lines_delivered_total[10m])")
    assert {resets[name] for name in names.values()} == {0.0}
    filtered = prometheus.query("logfan_sink_lines_filtered_total")
    assert filtered[names["errors"]] == 49_900
    assert filtered[names["all"]] == 0
    assert prometheus.query("logfan_up") == {"": 1.0}
    assert prometheus.query('logfan_sink_state{state="consuming"}') == dict.fromkeys(
        names.values(), 1.0
    )
