"""Lines from a pipe, in bounded memory: split, decoded, grouped per envelope, long ones cut."""

from __future__ import annotations

import os
import select
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate, repeat
from operator import itemgetter

from logfan.daemon.envelope import now_timestamp
from logfan.sinks.truncation import MAX_LINE_BYTES, fit, marker

MAX_ENVELOPE_LINES = 4000
MAX_ENVELOPE_BYTES = 1024 * 1024
#: how long to wait for more input before sending what has been read: none, so a typed line goes
#: at once; a flood still fills envelopes, since its next read is always ready.
LINGER = 0.0
READ_SIZE = 64 * 1024


def _envelope_cut(lines: list[tuple[str, str]]) -> tuple[int, int]:
    """How many of ``lines`` the next envelope takes, and their size: up to MAX_ENVELOPE_LINES,
    and lines until their size first reaches MAX_ENVELOPE_BYTES (at least one)."""
    head = lines[:MAX_ENVELOPE_LINES]
    sizes = list(accumulate(map(len, map(itemgetter(1), head))))
    cut = min(bisect_left(sizes, MAX_ENVELOPE_BYTES) + 1, len(head))
    return cut, sizes[cut - 1]


class LineReader:
    """Reads ``fd`` and yields the lines of one envelope at a time, ``(timestamp, line)`` each.

    An envelope's lines end at MAX_ENVELOPE_LINES, MAX_ENVELOPE_BYTES, or when the input has
    nothing more to give at once (LINGER), so an interactive line is sent at once and a flood goes
    in full envelopes.
    Invalid UTF-8 stays visible as ``\\xNN`` escapes; CRLF counts as LF; a last line without a
    newline counts. A line longer than ``max_line_bytes`` is cut (on a character boundary) with
    ``...[truncated N bytes]``; the rest of it is skipped as it streams by, so memory stays
    bounded whatever the input. ``truncated`` counts the lines cut.
    """

    def __init__(self, fd: int, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.fd = fd
        self.max_line_bytes = max_line_bytes
        self.truncated = 0
        self._line = bytearray()
        self._skipped: int | None = None  # bytes dropped from the current line, once over
        #: True while the lines just yielded ended because the input paused (not a flood).
        self.paused = False

    def _feed(self, chunk: bytes, stamp: str, out: list[tuple[str, str]]) -> int:
        """Split ``chunk`` into finished lines appended to ``out``; returns their byte size.

        The whole lines of a chunk (none longer than allowed, no line left over from the last
        chunk) are decoded and split in a few C calls; anything else goes byte by byte.
        """
        start = 0
        size = 0
        if self._line or self._skipped is not None:
            first = chunk.find(b"\n")
            if first < 0:
                return self._feed_slowly(chunk, stamp, out)
            size += self._feed_slowly(chunk[: first + 1], stamp, out)
            start = first + 1
        last = chunk.rfind(b"\n")
        if last >= start:
            whole = chunk[start : last + 1]
            if max(map(len, whole.split(b"\n"))) <= self.max_line_bytes:
                text = whole.decode("utf-8", "backslashreplace")
                if "\r" in text:
                    text = text.replace("\r\n", "\n")
                lines = text.split("\n")
                lines.pop()  # what follows the last LF: nothing
                out += zip(repeat(stamp), lines)
                size += sum(map(len, lines))
            else:
                size += self._feed_slowly(whole, stamp, out)
            start = last + 1
        if start < len(chunk):
            size += self._feed_slowly(chunk[start:], stamp, out)
        return size

    def _feed_slowly(self, chunk: bytes, stamp: str, out: list[tuple[str, str]]) -> int:
        """``_feed`` a line at a time, cutting a line longer than allowed as it streams by."""
        size = 0
        start = 0
        while True:
            newline = chunk.find(b"\n", start)
            piece = chunk[start:] if newline < 0 else chunk[start:newline]
            if self._skipped is not None:
                self._skipped += len(piece)
            else:
                room = self.max_line_bytes - len(self._line)
                if len(piece) <= room:
                    self._line += piece
                else:
                    self._line += piece[:room]
                    self._skipped = len(piece) - room
            if newline < 0:
                return size
            out.append((stamp, self._finish()))
            size += len(out[-1][1])
            start = newline + 1

    def _finish(self) -> str:
        line, skipped = bytes(self._line), self._skipped
        self._line, self._skipped = bytearray(), None
        if skipped is None:
            return line.removesuffix(b"\r").decode("utf-8", "backslashreplace")
        kept, cut = fit(line, len(line) + skipped, self.max_line_bytes)
        self.truncated += 1
        return kept.decode("utf-8", "backslashreplace") + marker(cut)

    def envelopes(self) -> Iterator[list[tuple[str, str]]]:
        """Each envelope's lines, until end of input."""
        lines: list[tuple[str, str]] = []
        size = 0
        eof = False
        while not eof:
            ready, _, _ = select.select([self.fd], [], [], LINGER if lines else None)
            if ready:
                chunk = os.read(self.fd, READ_SIZE)
                if not chunk:
                    eof = True
                    if self._line or self._skipped is not None:
                        chunk = b"\n"
                size += self._feed(chunk, now_timestamp(), lines)
            # One read may hold thousands of lines: send them in envelopes of the limits.
            while len(lines) > MAX_ENVELOPE_LINES or (size > MAX_ENVELOPE_BYTES and len(lines) > 1):
                cut, taken = _envelope_cut(lines)
                yield lines[:cut]
                lines, size = lines[cut:], size - taken
            full = len(lines) >= MAX_ENVELOPE_LINES or size >= MAX_ENVELOPE_BYTES
            if lines and (not ready or eof or full):
                self.paused = not ready  # the input has nothing more right now
                yield lines
                self.paused = False
                lines, size = [], 0
