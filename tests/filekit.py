"""Helpers of the file sink's tests: records with 10-byte lines, a sink on a path."""

from __future__ import annotations

from pathlib import Path

from logfan.sinks.base import Options, Record
from logfan.sinks.file import FileSink


def rec(message: str) -> Record:
    return Record(message=message, timestamp="2026-11-27T06:12:59.123Z", host="h", tag="t")


def sink(path: Path, **options: object) -> FileSink:
    return FileSink("f", Options("f", {"type": "file", "path": str(path), **options}))


def lines(n: int, start: int = 0) -> list[Record]:
    """``n`` records whose formatted lines (`{message}`) are 10 bytes each: ``line-0000\\n``."""
    return [rec(f"line-{i:04d}") for i in range(start, start + n)]


def text(first: int, count: int) -> str:
    return "".join(f"line-{i:04d}\n" for i in range(first, first + count))
