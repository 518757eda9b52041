"""logfan's benchmarks: throughput, latency, memory and CPU cost, each next to a baseline.

    .venv/bin/python bench/run.py                 # everything, 1,000,000 lines (make bench)
    .venv/bin/python bench/run.py --quick         # small run (20,000 lines, 3 s latency)
    .venv/bin/python bench/run.py --only latency  # one section (repeatable)
    .venv/bin/python bench/run.py --lines 300000 --json out.json --profile prof/

Every baseline is measured in the same invocation on the same machine, so the ratios hold even
when the absolute figures move with the machine's load. Needs RabbitMQ on 127.0.0.1:5672
(``LOGFAN_BENCH_AMQP`` overrides the URL), ``logfan`` installed in this Python, and pika.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import benchkit as bk
import latency
import memory
import peer
import profile_summary
import throughput

SECTIONS = ("throughput", "peer", "select", "latency", "memory", "cost")
QUICK_LINES = 20_000
ROW_IDS = (
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


@dataclass
class Row:
    """One line of the table; ``data`` holds the raw figures for ``--json``."""

    id: str
    case: str
    result: str
    baseline: str = "-"
    notes: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _mb(kib: int) -> str:
    return f"{kib / 1024:.1f} MB"


def _ratio(a: float, b: float) -> str:
    if b <= 0:
        return "-"
    r = a / b
    return f"{r:.1f}x" if r >= 10 else f"{r:.2f}x" if r >= 0.1 else f"{r:.4f}x"


def throughput_rows(runs: dict[str, throughput.Throughput]) -> list[Row]:
    """Lines/s of each run; logfan's next to the tutorial's and tee's."""
    rows = []
    tut, tee = runs.get("tutorial"), runs.get("tee")
    cases = {
        "rabbitmq": "logfan, RabbitMQ: emit -> 2 file + 1 UDP syslog sinks",
        "embedded": "logfan, embedded broker: same sinks",
        "tutorial": "tutorial pattern: pika, 3 receivers writing files",
        "tee": "tee to 3 files (physical reference)",
    }
    for key, case in cases.items():
        run = runs.get(key)
        if run is None:
            continue
        base = []
        if key in ("rabbitmq", "embedded") and tut is not None:
            base.append(f"tutorial {_n(tut.rate)}/s: {_ratio(run.rate, tut.rate)}")
        if key != "tee" and tee is not None:
            base.append(f"tee {_n(tee.rate)}/s: {_ratio(run.rate, tee.rate)}")
        notes = [f"{run.lines:,} lines in {run.seconds:.2f} s"]
        if run.udp_received is not None:
            notes.append(f"udp {run.udp_received:,} received, {run.udp_dropped or 0:,} dropped")
        notes += run.notes
        rows.append(
            Row(
                f"throughput.{key}",
                case,
                f"{_n(run.rate)} lines/s",
                "; ".join(base) or "-",
                "; ".join(notes),
                asdict(run) | {"lines_per_s": run.rate},
            )
        )
    return rows


PEER_CASES = {
    "files": "3 files",
    "udp": "2 files + UDP syslog",
    "tcp": "2 files + TCP syslog",
}


def peer_rows(runs: dict[str, throughput.Throughput]) -> list[Row]:
    """Each shape: logfan (RabbitMQ) next to syslog-ng doing the same, and the embedded broker."""
    rows = []
    tut = runs.get("tutorial")
    for shape, case in PEER_CASES.items():
        ours, theirs = runs.get(f"rabbitmq-{shape}"), runs.get(f"syslog-ng-{shape}")
        embedded = runs.get(f"embedded-{shape}")
        if ours is None or theirs is None:
            continue
        base = [f"syslog-ng {_n(theirs.rate)}/s: {_ratio(ours.rate, theirs.rate)}"]
        if embedded is not None:
            base.append(
                f"embedded {_n(embedded.rate)}/s: {_ratio(embedded.rate, theirs.rate)} of syslog-ng"
            )
        if tut is not None:
            base.append(f"tutorial {_n(tut.rate)}/s: {_ratio(ours.rate, tut.rate)}")
        cpu = ", ".join(
            f"{name} {s * 1e6 / ours.lines:.1f}" for name, s in sorted(ours.cpu.items())
        )
        their_cpu = ", ".join(
            f"{name} {s * 1e6 / theirs.lines:.2f}" for name, s in sorted(theirs.cpu.items())
        )
        rows.append(
            Row(
                f"peer.{shape}",
                f"logfan, RabbitMQ, {case}; syslog-ng, TCP in, flow control, {case}",
                f"{_n(ours.rate)} lines/s",
                "; ".join(base),
                f"CPU s per million lines: logfan {cpu}; syslog-ng {their_cpu}"
                + "".join(f"; {note}" for note in ours.notes + theirs.notes),
                {
                    "logfan": asdict(ours) | {"lines_per_s": ours.rate},
                    "syslog_ng": asdict(theirs) | {"lines_per_s": theirs.rate},
                    "embedded": asdict(embedded) | {"lines_per_s": embedded.rate}
                    if embedded
                    else None,
                    "ratio": ours.rate / theirs.rate if theirs.rate else None,
                },
            )
        )
    return rows


def _peer_runs(
    source: Path,
    lines: int,
    work: Path,
    runs: dict[str, throughput.Throughput],
    *,
    quick: bool = False,
) -> dict[str, throughput.Throughput]:
    """syslog-ng in each shape, and logfan in the shapes the throughput runs did not cover
    (``quick``: logfan on RabbitMQ only)."""
    out = {"tutorial": runs["tutorial"]} if "tutorial" in runs else {}
    for shape in PEER_CASES:
        out[f"syslog-ng-{shape}"] = _step(
            f"peer: syslog-ng {shape}", partial(peer.run_syslog_ng, shape, source, lines, work)
        )
        for kind in ("rabbitmq",) if quick else ("rabbitmq", "embedded"):
            if shape == "udp" and kind in runs:
                out[f"{kind}-udp"] = runs[kind]  # the throughput run is this shape
                continue
            out[f"{kind}-{shape}"] = _step(
                f"peer: logfan {kind} {shape}",
                partial(throughput.run_logfan, kind, source, lines, work, None, shape=shape),
            )
    return out


def select_rows(runs: dict[str, list[throughput.Throughput]]) -> list[Row]:
    """Lines/s with a selecting sink, next to the same daemon without (runs alternated)."""
    rows = []
    plain = runs["plain"]
    base = sum(r.rate for r in plain) / len(plain)
    cases = {
        "typical": "select on one file sink: min_severity, tag glob, RE2 exclude_match",
        "every-line": "select on one file sink: an RE2 match found in every line",
    }
    for key, case in cases.items():
        if key not in runs:
            continue
        mean = sum(r.rate for r in runs[key]) / len(runs[key])
        each = ", ".join(_n(r.rate) for r in runs[key])
        rows.append(
            Row(
                f"select.{key}",
                f"logfan, RabbitMQ: {case}",
                f"{_n(mean)} lines/s",
                f"no select {_n(base)}/s: {_ratio(mean, base)}",
                f"runs {each}; without: {', '.join(_n(r.rate) for r in plain)}",
                {"lines_per_s": mean, "baseline_lines_per_s": base},
            )
        )
    return rows


def latency_rows(runs: dict[str, latency.Latency]) -> list[Row]:
    """p50 / p99 / max of each run; logfan's next to the tutorial's."""
    rows = []
    tut = runs.get("tutorial")

    def figures(run: latency.Latency) -> str:
        if not run.samples:
            return "no line arrived"
        p50, p99 = run.percentile(50), run.percentile(99)
        return f"p50 {p50:.1f} / p99 {p99:.1f} / max {max(run.samples) * 1000:.1f} ms"

    cases = {
        "rabbitmq": "logfan, RabbitMQ: emit pipe -> file sink, default linger",
        "embedded": "logfan, embedded broker: same",
        "tutorial": "tutorial pattern: pika publisher -> 1 receiver",
    }
    for key, case in cases.items():
        run = runs.get(key)
        if run is None:
            continue
        base = f"tutorial {figures(tut)}" if tut is not None and key != "tutorial" else "-"
        notes = f"{len(run.samples)} of {run.sent} lines, 1 every {latency.INTERVAL * 1000:.0f} ms"
        data: dict[str, Any] = {"sent": run.sent, "received": len(run.samples)}
        if run.samples:
            data |= {
                "p50_ms": run.percentile(50),
                "p99_ms": run.percentile(99),
                "max_ms": max(run.samples) * 1000,
            }
        rows.append(Row(f"latency.{key}", case, figures(run), base, notes, data))
    return rows


def memory_rows(
    drain: memory.DrainMemory | None,
    stream: memory.EmitterMemory | None,
    runs: dict[str, throughput.Throughput],
) -> list[Row]:
    """Peak RSS of the daemon and the emitter, next to idle / one-line / tutorial figures."""
    rows = []
    tut = runs.get("tutorial")
    if drain is not None:
        base = [f"same daemon idle {_mb(drain.idle_kib)} PSS"]
        if tut is not None:
            base.append(f"tutorial receiver {_mb(tut.peak_kib['receiver'])}")
        notes = [
            f"drained in {drain.seconds:.2f} s from daemon start "
            f"({_n(drain.lines / drain.seconds)} lines/s)",
            f"published in {drain.publish_seconds:.2f} s",
            f"processes' own peak RSS summed {_mb(drain.rss_sum_kib)}",
            *drain.notes,
        ]
        rows.append(
            Row(
                "memory.daemon",
                f"daemon draining a {drain.lines:,}-line backlog: RabbitMQ, 3 sinks",
                f"peak PSS {_mb(drain.peak_kib)}",
                "; ".join(base),
                "; ".join(notes),
                asdict(drain),
            )
        )
    if stream is not None:
        base = [f"same emitter on 1 line {_mb(stream.one_line_kib)}"]
        if tut is not None:
            base.append(f"tutorial publisher {_mb(tut.peak_kib['publisher'])}")
        rate = stream.bytes_in / 1e6 / stream.seconds
        rows.append(
            Row(
                "memory.emitter",
                f"emitter streaming {stream.bytes_in / 1e6:,.0f} MB: embedded, /dev/null sink",
                f"peak RSS {_mb(stream.peak_kib)}",
                "; ".join(base),
                f"{rate:.1f} MB/s ({_n(rate * 1e6 / bk.LINE_BYTES)} lines/s), "
                f"emitter CPU {stream.cpu:.1f} s",
                asdict(stream),
            )
        )
    return rows


def cost_rows(runs: dict[str, throughput.Throughput]) -> list[Row]:
    """CPU seconds per million lines of each throughput run, by process."""
    rows = []
    tut, tee = runs.get("tutorial"), runs.get("tee")
    cases = {
        "rabbitmq": "CPU s per million lines: logfan daemon + emitter + RabbitMQ",
        "embedded": "CPU s per million lines: logfan daemon + emitter (broker in them)",
        "tutorial": "CPU s per million lines: tutorial publisher + receivers + RabbitMQ",
        "tee": "CPU s per million lines: tee",
    }
    for key, case in cases.items():
        run = runs.get(key)
        if run is None:
            continue
        cost = run.cpu_per_million()
        base = []
        if key in ("rabbitmq", "embedded") and tut is not None:
            base.append(
                f"tutorial {tut.cpu_per_million():.1f} s: {_ratio(cost, tut.cpu_per_million())}"
            )
        if key != "tee" and tee is not None:
            base.append(f"tee {tee.cpu_per_million():.2f} s")
        order = ("daemon", "emitter", "publisher", "receivers", "tee", "broker")
        parts = [f"{k} {run.cpu[k] * 1e6 / run.lines:.2f}" for k in order if k in run.cpu]
        notes = " + ".join(parts)
        if "broker" in run.cpu:
            notes += " (broker: approximate, the node is shared)"
        per = {name: s * 1e6 / run.lines for name, s in run.cpu.items()}
        rows.append(
            Row(
                f"cost.{key}",
                case,
                f"{cost:.2f} s",
                "; ".join(base) or "-",
                notes,
                {"cpu_s_per_million": cost, "by_process": per},
            )
        )
    return rows


def render(rows: list[Row]) -> str:
    """A plain, aligned table."""
    head = ("ROW", "CASE", "RESULT", "BASELINE (same run)", "NOTES")
    cells = [head, *[(r.id, r.case, r.result, r.baseline, r.notes) for r in rows]]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head) - 1)]
    lines = []
    for c in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=False)) + "  " + c[-1])
    return "\n".join(line.rstrip() for line in lines)


def _step(what: str, fn: Callable[[], Any]) -> Any:
    print(f"... {what}", file=sys.stderr, flush=True)
    started = time.monotonic()
    result = fn()
    print(f"    {what}: {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
    return result


def _select_runs(
    source: Path, lines: int, work: Path, *, once: bool = False
) -> dict[str, list[throughput.Throughput]]:
    """Without select and with each selection, alternated twice (the machine's drift evens
    out): plain, typical, every-line, every-line, typical, plain (``once``: the first three)."""
    selections: dict[str, dict[str, object] | None] = {
        "plain": None,
        "typical": throughput.SELECT_TYPICAL,
        "every-line": throughput.SELECT_EVERY_LINE,
    }
    order = [*selections] if once else [*selections, *reversed(selections)]
    runs: dict[str, list[throughput.Throughput]] = {key: [] for key in selections}
    for key in order:
        run = partial(throughput.run_logfan, "rabbitmq", source, lines, work, None)
        runs[key].append(_step(f"select: {key}", partial(run, select=selections[key])))
    return runs


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="logfan benchmarks; prints one table.")
    parser.add_argument("--lines", type=int, help="lines per throughput and backlog run")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_LINES:,} lines, 3 s, 20 MB")
    parser.add_argument(
        "--only",
        action="append",
        choices=SECTIONS,
        help="a section (repeatable); cost is measured on the throughput runs, which it runs",
    )
    parser.add_argument("--latency-seconds", type=float, help="default 30 (3 with --quick)")
    parser.add_argument("--stream-mb", type=float, help="emitter input in MB, default 1000 (20)")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the rows as JSON")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the daemon and emitter of the throughput runs (slows them down)",
    )
    args = parser.parse_args(argv)
    args.lines = args.lines or (QUICK_LINES if args.quick else 1_000_000)
    args.latency_seconds = args.latency_seconds or (3.0 if args.quick else 30.0)
    args.stream_mb = args.stream_mb or (20.0 if args.quick else 1000.0)
    args.only = args.only or list(SECTIONS)
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the sections asked for and print the table."""
    args = _args(argv)
    only = set(args.only)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    runs: dict[str, throughput.Throughput] = {}
    load_start = _load()
    with tempfile.TemporaryDirectory(prefix="logfan-bench-") as tmp:
        work = Path(tmp)
        source = bk.write_lines(work / "input.txt", args.lines)
        if only & {"throughput", "cost"}:
            runs["tee"] = _step(
                "throughput: tee", lambda: throughput.run_tee(source, args.lines, work)
            )
            runs["tutorial"] = _step(
                "throughput: tutorial", lambda: throughput.run_tutorial(source, args.lines, work)
            )
            for kind in ("rabbitmq", "embedded"):
                runs[kind] = _step(
                    f"throughput: logfan {kind}",
                    partial(throughput.run_logfan, kind, source, args.lines, work, args.profile),
                )
        if "throughput" in only:
            rows += throughput_rows(runs)
        if "peer" in only:
            rows += peer_rows(_peer_runs(source, args.lines, work, runs, quick=args.quick))
        if "select" in only:
            rows += select_rows(_select_runs(source, args.lines, work, once=args.quick))
        if "latency" in only:
            lat = {
                kind: _step(
                    f"latency: logfan {kind}",
                    partial(latency.run_logfan, kind, work, args.latency_seconds),
                )
                for kind in ("rabbitmq", "embedded")
            }
            lat["tutorial"] = _step(
                "latency: tutorial", lambda: latency.run_tutorial(work, args.latency_seconds)
            )
            rows += latency_rows(lat)
        if "memory" in only:
            drain = _step(
                "memory: daemon backlog", lambda: memory.drain_backlog(source, args.lines, work)
            )
            stream = _step(
                "memory: emitter stream",
                lambda: memory.emitter_stream(int(args.stream_mb * 1e6), work),
            )
            rows += memory_rows(drain, stream, runs)
        if "cost" in only:
            rows += cost_rows(runs)
    print(render(rows))
    print()
    print(
        f"# {args.lines:,} lines of {bk.LINE_BYTES} bytes; {os.cpu_count()} cores; load average "
        f"{load_start} at start, {_load()} at end; every baseline ran in this same invocation"
    )
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2, default=str) + "\n")
    if args.profile is not None:
        for path in sorted(args.profile.glob("*.txt")):
            print()
            print("\n".join(profile_summary.summarize(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
