"""Smoke run of the benchmarks: ``bench/run.py --quick`` completes and prints every row.

Benchmarks are not timed tests: nothing here asserts a speed, only that each bench still runs
end to end (so the scripts cannot rot) on a small input: 20,000 lines, 3 s of latency probes,
20 MB through the emitter.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.bench, pytest.mark.rabbitmq, pytest.mark.processes]

ROOT = Path(__file__).resolve().parents[2]
ROWS = (
    "throughput.rabbitmq",
    "throughput.embedded",
    "throughput.tutorial",
    "throughput.tee",
    "peer.files",
    "peer.udp",
    "peer.tcp",
    "select.typical",
    "select.every-line",
    "latency.rabbitmq",
    "latency.embedded",
    "latency.tutorial",
    "memory.daemon",
    "memory.emitter",
    "cost.rabbitmq",
    "cost.embedded",
    "cost.tutorial",
    "cost.tee",
)


@pytest.mark.rabbitmq
def test_quick_bench_prints_every_row(rabbitmq: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--quick", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"bench failed:\n{run.stdout}\n{run.stderr}"
    table = run.stdout.split("\n\n")[0].splitlines()  # a blank line, then a footnote
    assert table[0].split()[:3] == ["ROW", "CASE", "RESULT"]
    printed = [line.split()[0] for line in table[1:]]
    assert printed == list(ROWS), run.stdout
    rows = json.loads(out.read_text())
    assert [row["id"] for row in rows] == list(ROWS)


def run_bench(script: str, *args: str, timeout: float = 120) -> list[str]:
    """Run ``bench/SCRIPT ARGS``; its stdout lines once it exited 0."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout.splitlines()


def test_micro_bench_prints_every_step() -> None:
    """``bench/micro.py`` (decode and render per line, by column and as records, each next to
    its floor) runs."""
    header, *rows = run_bench("micro.py", "2")
    assert header.split() == ["STEP", "US/LINE", "BASELINE", "(same", "run)"]
    steps = ["decode", "decode-records", "render", "render-records"]
    assert [row.split()[0] for row in rows] == steps
    for row in rows:
        assert float(row.split()[1]) > 0


def test_spool_bench_prints_both_backlogs() -> None:
    """``bench/spool.py`` (the embedded broker's cost per get, deep next to shallow) runs."""
    header, *rows, ratio = run_bench("spool.py", "2000")
    assert header.split() == ["BACKLOG", "FIRST", "GET", "PER", "GET+ACK"]
    assert [row.split()[0] for row in rows] == ["1,000", "2,000"]
    assert ratio.startswith("per get at 2,000 / per get at 1,000 (the baseline) = ")


@pytest.mark.rabbitmq
def test_trickle_bench_prints_both_cases(rabbitmq: dict[str, Any]) -> None:
    """``bench/trickle.py`` (publish-to-file lag, flush_interval next to no bound) runs."""
    header, *rows = run_bench("trickle.py", "300", timeout=300)
    assert header.split() == ["FLUSH_INTERVAL", "P50", "MS", "P99", "MS", "MAX", "MS"]
    assert [row.split()[:2] for row in rows] == [["3600", "s"], ["0.2", "s"]]


def test_tcp_ack_bench_prints_both_receivers() -> None:
    """``bench/tcp_ack.py`` (the TCP sink waiting until the receiver took a batch, next to
    the sink that does not wait) runs, for a fast and a slow receiver."""
    title, header, *rows = run_bench("tcp_ack.py", "5000")
    assert title.startswith("5,000 lines of 80 bytes")
    assert header.split()[:2] == ["RECEIVER", "SINK"]
    assert [row.split()[0] for row in rows] == ["fast"] * 3 + ["slow"] * 3
    assert rows[2].startswith("fast      received, waiting / baseline: ")


@pytest.mark.rabbitmq
def test_plain_bench_prints_every_case(rabbitmq: dict[str, Any]) -> None:
    """``bench/plain.py`` (emit --plain next to envelopes and a bare py-amqp publisher) runs."""
    header, *rows = run_bench("plain.py", "2000", "--runs", "1", timeout=300)
    assert header.split()[:2] == ["CASE", "LINES/S"]
    assert [row.split()[0] for row in rows] == ["envelope", "plain", "floor"]
