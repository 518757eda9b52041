"""Helpers of the syslog sink's tests: records, and exact readers of stream framing."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable

from logfan.sinks.base import Record
from logfan.sinks.syslog import SyslogSink

MakeSink = Callable[..., SyslogSink]

STAMP = "2026-11-27T06:12:59.123Z"
BSD_STAMP = re.compile(rb"<\d+>[A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d ")


def record(message: str = "hello", **fields: str) -> Record:
    values = {"timestamp": STAMP, "host": "web1", "tag": "app", "severity": "info", "pid": "42"}
    return Record(message=message, **(values | fields))


def read_octet_frames(conn: socket.socket, count: int) -> list[bytes]:
    """Read exactly ``count`` RFC 6587 octet-counted frames and nothing after them."""
    buf, frames = b"", []
    while True:
        while (space := buf.find(b" ")) > 0 and len(buf) >= space + 1 + int(buf[:space]):
            end = space + 1 + int(buf[:space])
            frames.append(buf[space + 1 : end])
            buf = buf[end:]
        if len(frames) >= count:
            break
        chunk = conn.recv(65536)
        assert chunk, f"connection closed after {frames!r} with {buf!r} left over"
        buf += chunk
    assert len(frames) == count
    assert buf == b""
    return frames


def read_lines(conn: socket.socket, count: int) -> list[bytes]:
    """Read exactly ``count`` LF-terminated lines and nothing after them."""
    buf = b""
    while buf.count(b"\n") < count:
        chunk = conn.recv(65536)
        assert chunk, f"connection closed with {buf!r}"
        buf += chunk
    *lines, rest = buf.split(b"\n")
    assert rest == b""
    return lines
