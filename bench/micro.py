"""Per-line cost of the daemon's two Python hot loops, each next to its floor in the same run.

- decode: one 1,000-line envelope to the block a consumer takes (by column), next to
  ``json.loads`` of the same body alone; and to records (what a plugin that reads them gets);
- render: that block to a file sink's text, next to joining the bare messages; and the same
  lines as a list of records.

Usage: ``.venv/bin/python bench/micro.py [ROUNDS]`` (default 300 rounds of 1,000 lines).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable

from logfan.daemon.envelope import CONTENT_TYPE, decode, decode_block, encode
from logfan.sinks.batch import Batch
from logfan.sinks.template import Template, render_lines

LINES = 1000


def per_line_us(rounds: int, work: Callable[[], object]) -> float:
    """Microseconds per line of ``work`` (which handles LINES lines), best of three."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            work()
        best = min(best, time.perf_counter() - started)
    return best * 1e6 / rounds / LINES


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    pairs = [
        (f"2026-11-27T06:12:59.{i % 1000:03d}Z", f"line {i:06d} " + "x" * 80) for i in range(LINES)
    ]
    body = encode(pairs, msg_id="bench", host="web1", tag="build", pid=4242, severity="info")
    records = decode(body, CONTENT_TYPE, {})
    template = Template("{timestamp} {host} {tag}: {message}")
    messages = [r.message for r in records]
    batch = Batch([decode_block(body, CONTENT_TYPE, {})])
    loads = per_line_us(rounds, lambda: json.loads(body))
    join = per_line_us(rounds, lambda: "\n".join(messages))
    rows = [
        (
            "decode",
            per_line_us(rounds, lambda: decode_block(body, CONTENT_TYPE, {})),
            "json.loads alone",
            loads,
        ),
        (
            "decode-records",
            per_line_us(rounds, lambda: decode(body, CONTENT_TYPE, {})),
            "json.loads alone",
            loads,
        ),
        (
            "render",
            per_line_us(rounds, lambda: render_lines(template, batch, "escape")),
            "join of the bare messages",
            join,
        ),
        (
            "render-records",
            per_line_us(rounds, lambda: render_lines(template, records, "escape")),
            "join of the bare messages",
            join,
        ),
    ]
    print(f"{'STEP':15} {'US/LINE':>8}  BASELINE (same run)")
    for step, cost, name, floor in rows:
        print(f"{step:15} {cost:8.3f}  {name} {floor:.3f} us/line")


if __name__ == "__main__":
    main()
