"""Cutting a line to a byte limit on a character boundary, with a marker that fits inside it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from logfan_testkit import assert_cut

from logfan.sinks.truncation import truncate_text, utf8_prefix


class TestTruncateText:
    """Per-sink truncation of a message."""

    def test_short_text_is_untouched(self) -> None:
        """Within the limit: the same string, nothing cut."""
        assert truncate_text("ok", 64) == ("ok", 0)

    def test_cut_counts_bytes_and_keeps_whole_characters(self) -> None:
        """100 three-byte characters cut to 64 bytes: 21 characters, 237 bytes cut."""
        text, cut = truncate_text("€" * 100, 64)
        assert_cut(text, "€" * 100, 64)
        assert cut == 300 - len(text.rsplit("...", 1)[0].encode())

    @given(st.text(max_size=500), st.integers(min_value=1, max_value=600))
    def test_prefix_is_valid_utf8_within_limit(self, text: str, limit: int) -> None:
        """utf8_prefix never splits a character and never exceeds the limit."""
        data = text.encode()
        kept = utf8_prefix(data, limit)
        assert len(kept) <= limit
        assert data.startswith(kept)
        kept.decode()  # raises if a character was split
