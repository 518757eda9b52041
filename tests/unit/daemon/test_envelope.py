"""The wire format: the emitter's envelope, and plain text from any AMQP publisher."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logfan.daemon.envelope import (
    CONTENT_TYPE,
    HOST_HEADER,
    PID_HEADER,
    SEVERITY_HEADER,
    TIME_HEADER,
    decode,
    decode_block,
    encode,
    ms_timestamp,
    now_timestamp,
    timestamp_ms,
)
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

    def test_undecodable_argument_bytes_stay_visible(self) -> None:
        """An argument's undecodable byte (a surrogate escape) and a lone surrogate travel as
        ``\\xNN`` and ``\\udNNN``: the envelope stays one, not a page of JSON text."""
        body = encode(
            [("t1", "bad \udcff byte"), ("t2", "lone \ud800")],
            msg_id="abc",
            host="web1",
            tag="t\udcfe",
            pid=7,
            severity="info",
        )
        records = decode(body, CONTENT_TYPE, {})
        assert [r.message for r in records] == ["bad \\xff byte", "lone \\ud800"]
        assert records[0].tag == "t\\xfe"
        assert records[1].msgid == "abc-1"

    def test_numbers_past_64_bits_and_nan_still_parse(self) -> None:
        """JSON that msgspec refuses (a pid past 64 bits, NaN elsewhere) is still an envelope."""
        body = b'{"v":1,"id":"x","pid":123456789012345678901234,"n":NaN,"lines":[["t","a"]]}'
        [record] = decode(body, CONTENT_TYPE, {})
        assert (record.message, record.pid) == ("a", "123456789012345678901234")

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


#: 2026-11-27T06:12:59.123Z in milliseconds since the epoch
MS = 1_795_759_979_123
STAMP = "2026-11-27T06:12:59.123Z"


@pytest.fixture
def far_from_utc() -> Iterator[None]:
    """Local time 10 hours east of UTC, so that a naive time taken as local shows."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = "Pacific/Port_Moresby"
    time.tzset()
    yield
    if old is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = old
    time.tzset()


class TestPlainTextMetadata:
    """What a plain-text message says about its lines, and what fills in what it does not."""

    def test_headers_of_logfan_emit_plain(self) -> None:
        """The headers ``logfan emit --plain`` sets give time (ms), host, pid and severity."""
        headers = {TIME_HEADER: MS, HOST_HEADER: "web1", PID_HEADER: 4242, SEVERITY_HEADER: "err"}
        properties = {"app_id": "build", "message_id": "abc-7", "timestamp": MS // 1000}
        (record,) = decode("a line", "text/plain", properties, "utf-8", headers=headers, host="me")
        assert record == Record("a line", STAMP, "web1", "build", "err", "4242", "abc-7")

    def test_milliseconds_win_over_the_seconds_property(self) -> None:
        """``timestamp_in_ms`` (also what RabbitMQ's timestamp plugin and interceptor set) is
        preferred to the ``timestamp`` property, which has whole seconds only."""
        props = {"timestamp": 1}
        (record,) = decode(b"x", None, props, headers={TIME_HEADER: MS})
        assert record.timestamp == STAMP
        (record,) = decode(b"x", None, props, headers={})
        assert record.timestamp == "1970-01-01T00:00:01.000Z"

    @pytest.mark.parametrize("ms", ["123", 1.5, True, None, 10**20, -(10**20)])
    def test_a_bad_milliseconds_header_falls_back_to_the_property(self, ms: object) -> None:
        """A header of another type or out of any date's range is ignored, never raised."""
        (record,) = decode(b"x", None, {"timestamp": 2}, headers={TIME_HEADER: ms})
        assert record.timestamp == "1970-01-01T00:00:02.000Z"

    def test_a_timestamp_out_of_range_falls_back_to_the_receipt_time(self) -> None:
        """A ``timestamp`` property no date can hold gives the time of receipt."""
        (record,) = decode(b"x", None, {"timestamp": 2**62}, received=MS / 1000)
        assert record.timestamp == STAMP

    def test_without_any_time_the_receipt_time_counts(self) -> None:
        """A message without a time gets ``received``: the consumer's time of receipt, so a
        batch written again after a failure keeps the times it had."""
        records = decode(b"one\ntwo", None, {}, received=MS / 1000)
        assert [r.timestamp for r in records] == [STAMP, STAMP]

    def test_without_a_host_the_daemons_host_fills_in(self) -> None:
        """Every sink then shows the same host; a host the message gives is kept."""
        (record,) = decode(b"x", None, {}, host="relay1")
        assert record.host == "relay1"
        (record,) = decode(b"x", None, {}, headers={HOST_HEADER: "web1"}, host="relay1")
        assert record.host == "web1"
        (record,) = decode(b"x", None, {}, headers={HOST_HEADER: ""}, host="relay1")
        assert record.host == "relay1"

    def test_an_envelope_without_a_host_gets_the_daemons(self) -> None:
        """The same rule holds for an envelope from another publisher that leaves out host;
        an entry without a time gets the time of receipt."""
        body = json.dumps({"v": 1, "lines": [["", "x"], ["t", "y", "err"]]}).encode()
        records = decode(body, CONTENT_TYPE, {}, host="relay1", received=MS / 1000)
        assert [(r.host, r.timestamp) for r in records] == [("relay1", STAMP), ("relay1", "t")]
        body = encode([("t", "z")], msg_id="m", host="web1", tag="a", pid=1, severity="info")
        assert decode(body, CONTENT_TYPE, {}, host="relay1")[0].host == "web1"

    @pytest.mark.parametrize("severity", ["3", 3, "ERROR", "err"])
    def test_severity_header_is_normalized(self, severity: object) -> None:
        """Names, aliases and digits are accepted, as for ``logfan emit -p``."""
        (record,) = decode(b"x", None, {}, headers={SEVERITY_HEADER: severity})
        assert record.severity == "err"

    @pytest.mark.parametrize("severity", ["loud", 9, True, None])
    def test_unknown_severity_header_is_info(self, severity: object) -> None:
        """Anything else is the default severity."""
        (record,) = decode(b"x", None, {}, headers={SEVERITY_HEADER: severity})
        assert record.severity == "info"

    def test_a_naive_datetime_timestamp_is_utc(self, far_from_utc: None) -> None:
        """A transport that hands the property over as a naive datetime means UTC (py-amqp's
        own convention for AMQP timestamps), whatever the local time zone."""
        (record,) = decode(b"x", None, {"timestamp": datetime(2026, 11, 27, 6, 12, 59)})
        assert record.timestamp == "2026-11-27T06:12:59.000Z"


class TestMilliseconds:
    """``timestamp_ms`` and ``ms_timestamp`` convert exactly, without a float in between."""

    def test_known_value(self) -> None:
        """The docs' example time."""
        assert timestamp_ms(STAMP) == MS
        assert ms_timestamp(MS) == STAMP

    @given(ms=st.integers(min_value=0, max_value=253_402_300_799_999))
    def test_round_trip(self, ms: int) -> None:
        """Every millisecond from 1970 to 9999 survives both ways."""
        assert timestamp_ms(ms_timestamp(ms)) == ms

    def test_now_timestamp_agrees(self) -> None:
        """A time of ``now_timestamp`` converts to its own milliseconds."""
        stamp = now_timestamp(MS / 1000)
        assert (stamp, timestamp_ms(stamp)) == (STAMP, MS)

    @pytest.mark.parametrize("text", ["", "-", "yesterday", "2026-13-01T00:00:00Z"])
    def test_not_a_time(self, text: str) -> None:
        """What is not RFC 3339 gives None."""
        assert timestamp_ms(text) is None


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

    @given(
        lines=st.lists(st.tuples(texts.filter(bool), texts), min_size=1, max_size=10),
        tag=st.sampled_from(["t", "t\x1b", "é", "a\\b"]),
        raw=st.booleans(),
    )
    def test_a_block_called_clean_holds_no_control_character(
        self, lines: list[tuple[str, str]], tag: str, raw: bool
    ) -> None:
        """``clean`` (sinks then skip their scan) is never said of a block that has one."""
        body = encode(lines, msg_id="m", host="h", tag=tag, pid=1, severity="info")
        block = decode_block(body.decode() if raw else body, CONTENT_TYPE, {})
        controls = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
        if block.clean:
            assert not any(controls.search(r) for record in block.records() for r in record)
        # JSON escapes a backslash and a double quote too: a body holding one is not called clean
        plain = (
            t.isascii() and t.isprintable() and not {"\\", '"'} & set(t)
            for pair in lines
            for t in pair
        )
        if all(plain):
            assert block.clean == (tag.isprintable() and "\\" not in tag and tag.isascii())
