"""The wire format: the emitter's envelope, and plain text from any AMQP publisher."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logfan.daemon.envelope import CONTENT_TYPE, decode, encode
from logfan.sinks.base import Record


class TestEnvelope:
    """The emitter's envelope round-trips; anything else is text."""

    def test_round_trip(self) -> None:
        """Lines, metadata, per-line severity and message ids survive encoding."""
        body = encode(
            [("t1", "one"), ("t2", "two", "err")],
            msg_id="abc",
            host="web1",
            tag="build",
            pid=7,
            severity="info",
        )
        records = decode(body, CONTENT_TYPE, {})
        assert records == [
            Record("one", "t1", host="web1", tag="build", severity="info", pid="7", msgid="abc-0"),
            Record("two", "t2", host="web1", tag="build", severity="err", pid="7", msgid="abc-1"),
        ]
        assert json.loads(body)["v"] == 1

    @pytest.mark.parametrize(
        ("body", "content_type", "messages"),
        [
            (b"plain", None, ["plain"]),
            (b"a\r\nb\n", "text/plain", ["a", "b"]),
            (b"\xff ok", None, ["\ufffd ok"]),
            (b"", None, [""]),
            (b'{"v": 2, "lines": []}', CONTENT_TYPE, ['{"v": 2, "lines": []}']),
            (b'{"v": 1, "lines": [["t"]]}', CONTENT_TYPE, ['{"v": 1, "lines": [["t"]]}']),
            (b"[1, 2]", CONTENT_TYPE, ["[1, 2]"]),
        ],
    )
    def test_anything_else_is_text(
        self, body: bytes, content_type: str | None, messages: list[str]
    ) -> None:
        """Foreign and malformed bodies become text lines, never an exception."""
        assert [r.message for r in decode(body, content_type, {})] == messages

    def test_text_takes_amqp_properties(self) -> None:
        """A plain body's tag and id come from app_id and message_id when present."""
        (record,) = decode(b"x", None, {"app_id": "billing", "message_id": "42", "timestamp": 0})
        assert (record.tag, record.msgid, record.timestamp) == (
            "billing",
            "42",
            "1970-01-01T00:00:00.000Z",
        )

    def test_envelope_with_odd_severity(self) -> None:
        """An envelope line whose severity is '³' decodes (severity falls back), never raises."""
        body = json.dumps({"v": 1, "lines": [["t", "hello", "³"]]}).encode()
        (record,) = decode(body, CONTENT_TYPE, {})
        assert (record.message, record.severity) == ("hello", "info")


texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)


class TestEnvelopeProperties:
    """decode never raises; encode/decode round-trips."""

    @given(body=st.binary(max_size=500), envelope=st.booleans())
    def test_decode_never_raises(self, body: bytes, envelope: bool) -> None:
        """Any bytes, with or without logfan's content type: a list of records."""
        out = decode(body, CONTENT_TYPE if envelope else None, {})
        assert isinstance(out, list)
        assert out

    @given(lines=st.lists(st.tuples(texts.filter(bool), texts), min_size=1, max_size=20))
    def test_round_trip(self, lines: list[tuple[str, str]]) -> None:
        """What the emitter encodes, the daemon decodes to the same lines."""
        body = encode(lines, msg_id="m", host="h", tag="t", pid=1, severity="info")
        got = decode(body, CONTENT_TYPE, {})
        assert [(r.timestamp, r.message) for r in got] == lines

    @given(
        lines=st.lists(
            st.one_of(
                st.tuples(texts.filter(bool), texts),
                st.tuples(texts.filter(bool), texts, st.sampled_from(["err", "debug", "7"])),
            ),
            min_size=1,
            max_size=20,
        ),
        msg_id=st.sampled_from(["m", "-"]),
    )
    def test_fast_path_agrees_with_the_general_one(
        self, lines: list[tuple[str, ...]], msg_id: str
    ) -> None:
        """An envelope of plain pairs (decoded without a loop per line) gives the same records
        as the line-by-line path, which a per-line severity at the end forces."""
        meta = {"msg_id": msg_id, "host": "h", "tag": "t", "pid": 1, "severity": "info"}
        got = decode(encode(lines, **meta), CONTENT_TYPE, {})  # type: ignore[arg-type]
        forced = decode(encode([*lines, ("t", "x", "info")], **meta), CONTENT_TYPE, {})  # type: ignore[arg-type]
        assert got == forced[:-1]
        assert all(type(r) is Record for r in got)
