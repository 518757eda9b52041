"""The emitter's line reader: splitting, decoding, envelope limits, cutting in bounded memory."""

from __future__ import annotations

import itertools
import os
import threading

from hypothesis import given, settings
from hypothesis import strategies as st
from logfan_testkit import assert_cut

from logfan.daemon.emit.reader import LineReader


def read_all(data: bytes, max_line_bytes: int = 64 * 1024) -> tuple[list[str], int]:
    """Feed ``data`` through a real pipe; return the lines and the truncation count."""
    r, w = os.pipe()

    def writer() -> None:
        with os.fdopen(w, "wb") as f:
            f.write(data)

    thread = threading.Thread(target=writer)
    thread.start()
    reader = LineReader(r, max_line_bytes)
    lines = [line for batch in reader.envelopes() for _, line in batch]
    thread.join()
    os.close(r)
    return lines, reader.truncated


class TestLineReader:
    """Splitting and cutting."""

    def test_lines_crlf_last_line_and_invalid_utf8(self) -> None:
        """CRLF is LF, invalid bytes stay visible, a last line without newline counts."""
        assert read_all(b"a\r\nb\n\xffc\nlast") == (["a", "b", "\\xffc", "last"], 0)

    def test_long_line_is_cut_on_a_character_boundary_with_a_marker(self) -> None:
        """A 100-byte limit on 2-byte characters: 50 characters kept, the rest counted."""
        lines, truncated = read_all(("é" * 300 + "\nnext\n").encode(), max_line_bytes=101)
        assert truncated == 1
        assert lines[1] == "next"
        assert_cut(lines[0], "é" * 300, 101)

    def test_hundred_megabyte_line_streams_in_bounded_memory(self) -> None:
        """A 100 MB line without newline: one cut line, memory of the reader stays small."""
        data = b"z" * (100 << 20)
        lines, truncated = read_all(data, max_line_bytes=1000)
        assert len(lines) == 1
        assert_cut(lines[0], "z" * len(data), 1000)
        assert truncated == 1

    @settings(deadline=None)
    @given(data=st.binary(max_size=3000), limit=st.integers(min_value=64, max_value=300))
    def test_one_output_line_per_input_line(self, data: bytes, limit: int) -> None:
        """Arbitrary bytes: exactly one line out per line in, none longer than the limit."""
        lines, truncated = read_all(data, limit)
        expected = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
        assert len(lines) == expected
        cut = [line for line in lines if line.endswith(" bytes]") and "...[truncated " in line]
        assert truncated <= len(cut)
        for line in lines:
            if "...[truncated " in line:  # the marker counts: a cut line fits the limit whole
                assert len(line.encode("utf-8", "surrogateescape")) <= 4 * limit


class TestEnvelopes:
    """A flood is sent in batches no larger than the limits."""

    def test_batches_respect_line_and_byte_limits(self) -> None:
        """5,000 short lines and 60,000 empty ones: no batch over the line and byte limits."""
        from logfan.daemon.emit.reader import MAX_ENVELOPE_BYTES, MAX_ENVELOPE_LINES

        for data in (
            b"".join(b"%d\n" % i for i in range(5000)),
            b"\n" * 60000,
            b"x" * 1000 + b"\n",
        ):
            r, w = os.pipe()

            def write(fd: int = w, payload: bytes = data) -> None:
                with os.fdopen(fd, "wb") as f:
                    f.write(payload)

            thread = threading.Thread(target=write)
            thread.start()
            batches = list(LineReader(r).envelopes())
            thread.join()
            os.close(r)
            assert sum(len(b) for b in batches) == data.count(b"\n")
            assert max(len(b) for b in batches) <= MAX_ENVELOPE_LINES
            assert max(sum(len(line) for _, line in b) for b in batches) <= MAX_ENVELOPE_BYTES

    def test_a_batch_says_whether_the_input_paused(self) -> None:
        """A line followed by silence ends a batch with ``paused`` (the emitter then waits for
        its confirm); the full batches of a flood do not."""
        r, w = os.pipe()
        flood = b"".join(b"%d\n" % i for i in range(3000))
        resume = threading.Event()

        def write() -> None:
            with os.fdopen(w, "wb") as f:
                f.write(b"interactive\n")
                f.flush()
                resume.wait(10)  # the pause: nothing more until the first batch was read
                f.write(flood)

        thread = threading.Thread(target=write)
        thread.start()
        reader = LineReader(r)
        seen = []
        for batch in reader.envelopes():
            seen.append((len(batch), reader.paused))
            resume.set()
        thread.join()
        os.close(r)
        assert seen[0] == (1, True)
        assert all(not paused for count, paused in seen[1:] if count == 1000)
        assert sum(count for count, _ in seen) == 3001


class TestWholeChunks:
    """Whole lines are split and decoded a chunk at a time: the same lines as byte by byte."""

    @settings(deadline=None, max_examples=300)
    @given(
        data=st.lists(
            st.sampled_from(
                [b"a", b"\xc3\xa9", b"\xe2\x82", b"\xff", b"\r", b"\n", b"\r\n", b"x" * 70]
            ),
            max_size=60,
        ).map(b"".join),
        cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=6),
        limit=st.integers(min_value=64, max_value=200),
    )
    def test_chunks_give_the_lines_of_the_slow_path(
        self, data: bytes, cuts: list[int], limit: int
    ) -> None:
        """Any bytes cut into any chunks: the lines, sizes and cut count of one slow pass."""
        fast, slow = LineReader(-1, limit), LineReader(-1, limit)
        fast_lines: list[tuple[str, str]] = []
        slow_lines: list[tuple[str, str]] = []
        bounds = [0, *sorted(c for c in cuts if c < len(data)), len(data)]
        fast_size = sum(
            fast._feed(data[a:b], "ts", fast_lines) for a, b in itertools.pairwise(bounds)
        )
        slow_size = slow._feed_slowly(data, "ts", slow_lines)
        assert fast_lines == slow_lines
        assert (fast_size, fast.truncated) == (slow_size, slow.truncated)
