"""Summarize a ``py-spy record -f raw`` file: the functions with the most self and total time.

    python bench/profile_summary.py daemon-rabbitmq.txt [--top 15]

A raw file holds one collapsed stack per line, ``outer;...;inner COUNT``; a function's self
time is the samples where it is the innermost frame, its total time the samples where it is
anywhere on the stack (counted once per stack). Line numbers are dropped, so a function is one
row however many of its lines were sampled.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

_LINE_NO = re.compile(r":\d+\)$")


def _frame(text: str) -> str:
    """``name (path/to/file.py:123)`` to ``name (file.py)``."""
    text = _LINE_NO.sub(")", text.strip())
    name, _, where = text.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if where else name


def load(path: Path) -> tuple[Counter[str], Counter[str], int]:
    """Self and total sample counts per function, and the number of samples."""
    own: Counter[str] = Counter()
    total: Counter[str] = Counter()
    samples = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_frame(f) for f in stack.split(";") if f]
        if not frames:
            continue
        n = int(count)
        samples += n
        own[frames[-1]] += n
        for frame in set(frames):
            total[frame] += n
    return own, total, samples


def summarize(path: Path, top: int = 12) -> list[str]:
    """Printable lines: the ``top`` functions by self time, then by total time."""
    own, total, samples = load(path)
    if not samples:
        return [f"{path.name}: no samples"]
    out = [f"{path.name}: {samples} samples (100 Hz, busy threads only)", "  self%  function"]
    out += [f"  {100 * n / samples:5.1f}  {name}" for name, n in own.most_common(top)]
    out.append("  total% function")
    out += [f"  {100 * n / samples:5.1f}  {name}" for name, n in total.most_common(top)]
    return out


def main() -> None:
    """Print the summary of each file given."""
    parser = argparse.ArgumentParser(description="Summarize py-spy raw profiles.")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    for path in args.files:
        print("\n".join(summarize(path, args.top)))


if __name__ == "__main__":
    main()
