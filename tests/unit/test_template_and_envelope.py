"""Line templates and the wire format."""

from __future__ import annotations

import json

import pytest

from logfan.daemon.envelope import CONTENT_TYPE, decode, encode
from logfan.sinks.base import Record
from logfan.sinks.template import Template, control_filter


class TestTemplate:
    """`format:` substitutes the documented placeholders and nothing else."""

    def test_placeholders(self) -> None:
        """Every placeholder renders its record field; format specs work."""
        r = Record("msg", "ts", host="h", tag="t", severity="err", pid="42", msgid="m-0")
        out = Template("{timestamp}|{host}|{tag}|{pid}|{severity:>7}|{msgid}|{message}").render(r)
        assert out == "ts|h|t|42|    err|m-0|msg"

    @pytest.mark.parametrize(
        "text", ["{message.__class__}", "{message[0]}", "{nope}", "{message!r}", "{", "{0}"]
    )
    def test_rejects_anything_but_bare_placeholders(self, text: str) -> None:
        """Attribute, index, unknown names, conversions and broken braces are errors."""
        with pytest.raises(ValueError, match=r"\S"):
            Template(text)

    def test_control_policies(self) -> None:
        """escape makes controls visible, strip drops them, keep leaves them; TAB stays."""
        text = "a\nb\rc\x1b[1m\x00\td\x7f"
        assert control_filter("escape")(text) == "a\\nb\\rc\\x1b[1m\\x00\td\\x7f"
        assert control_filter("strip")(text) == "abc[1m\td"
        assert control_filter("keep")(text) == text

    def test_c1_controls_and_line_separators(self) -> None:
        """An 8-bit CSI (U+009B), NEL (U+0085) and U+2028 never reach a terminal raw."""
        text = "a\x9b2Jb\x85c\u2028d\u00e9"
        assert control_filter("escape")(text) == "a\\u009b2Jb\\u0085c\\u2028d\u00e9"
        assert control_filter("strip")(text) == "a2Jbcd\u00e9"


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
