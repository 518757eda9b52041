"""Lines cut to a byte limit on a character boundary, ending with a visible marker.

The emitter, the consumer (``max_line_bytes``) and the syslog sink (``max_message_bytes``) cut
lines the same way: the marker ``...[truncated N bytes]`` fits inside the limit, so a line cut
once is never cut again by a later stage with the same limit.
"""

from __future__ import annotations

__all__ = ["MAX_LINE_BYTES", "fit", "marker", "truncate_bytes", "truncate_text", "utf8_prefix"]

#: longest line kept whole by default, in UTF-8 bytes (``max_line_bytes``, ``emit
#: --max-line-bytes``).
MAX_LINE_BYTES = 64 * 1024


def utf8_prefix(data: bytes, limit: int) -> bytes:
    """The longest prefix of ``data`` within ``limit`` bytes that ends on a character boundary."""
    if len(data) <= limit:
        return data
    end = limit
    while end > 0 and data[end] & 0xC0 == 0x80:  # data[end] continues a character: step back
        end -= 1
    return data[:end]


def marker(cut: int) -> str:
    """What replaces the end of a truncated line."""
    return f"...[truncated {cut} bytes]"


def fit(data: bytes, total: int, limit: int) -> tuple[bytes, int]:
    """Cut a line of ``total`` bytes, of which ``data`` is the start, to ``limit`` bytes
    *including* the marker; returns the kept bytes (whole characters) and the bytes cut."""
    room = limit - len(marker(total))
    while True:
        kept = utf8_prefix(data, max(room, 0))
        cut = total - len(kept)
        needed = len(kept) + len(marker(cut))
        if needed <= limit or room <= 0:
            return kept, cut
        room -= needed - limit  # the marker grew (more digits than guessed): keep less


def truncate_bytes(data: bytes, limit: int) -> tuple[bytes, int]:
    """``data`` cut to at most ``limit`` bytes, marker included, and the bytes cut (0: whole)."""
    if len(data) <= limit:
        return data, 0
    kept, cut = fit(data, len(data), limit)
    return kept + marker(cut).encode(), cut


def truncate_text(text: str, limit: int) -> tuple[str, int]:
    """``text`` cut to at most ``limit`` UTF-8 bytes, marker included, and the bytes cut."""
    if len(text) <= limit // 4:  # no character is longer than 4 bytes: surely short enough
        return text, 0
    data, cut = truncate_bytes(text.encode("utf-8", "surrogateescape"), limit)
    return (data.decode("utf-8", "surrogateescape"), cut) if cut else (text, 0)
