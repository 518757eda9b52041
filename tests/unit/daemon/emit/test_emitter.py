"""The emitter's plain-text messages: one line each, nothing lost compared with an envelope."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.emit.emitter import Emitter, Outgoing, plain_body
from logfan.daemon.envelope import CONTENT_TYPE, decode, encode, now_timestamp
from logfan.sinks.base import Record

STAMP = "2026-11-27T06:12:59.123Z"


def emitter(severity: str = "warning") -> Emitter:
    """An emitter that is never connected: building messages needs no broker."""
    broker = BrokerConfig(url="amqp://127.0.0.1:1//")
    return Emitter(broker, [], tag="build", severity=severity, plain=True)


def decoded(message: Outgoing) -> list[Record]:
    """What a sink gets from ``message``, as the daemon decodes a delivery."""
    return decode(
        message.body,
        message.content_type,
        message.properties or {},
        message.content_encoding,
        headers=message.headers,
        host="the-daemon",
    )


class TestPlainMessages:
    """``logfan emit --plain``: the body is the line, the metadata is in properties and headers."""

    def test_body_and_properties(self) -> None:
        """The body is exactly the line's UTF-8; the AMQP properties any consumer reads are set."""
        sender = emitter()
        message = sender._plain(STAMP, "ünïcode line")
        assert message.body == "ünïcode line".encode()
        assert message.lines == 1
        assert (message.content_type, message.content_encoding) == ("text/plain", "utf-8")
        assert message.properties == {
            "message_id": f"{sender._run_id}-0",
            "timestamp": 1_795_759_979,
            "app_id": "build",
        }

    def test_message_ids_count_lines(self) -> None:
        """The n-th line's message_id is ``<run id>-<n>``, as an envelope's n-th line's msgid."""
        sender = emitter()
        ids = [sender._plain(STAMP, str(n)).properties["message_id"] for n in range(3)]  # type: ignore[index]
        assert ids == [f"{sender._run_id}-{n}" for n in range(3)]

    @given(
        line=st.text(alphabet=st.characters(codec="utf-8", exclude_characters="\n\r"), max_size=80),
        stamp=st.sampled_from([STAMP, "1970-01-01T00:00:00.000Z", "2099-12-31T23:59:59.999Z"]),
        severity=st.sampled_from(["info", "err", "debug"]),
    )
    def test_a_sink_gets_what_an_envelope_gives(self, line: str, stamp: str, severity: str) -> None:
        """The record a sink gets from a plain message equals the envelope's, msgid aside."""
        sender = emitter(severity=severity)
        (plain,) = decoded(sender._plain(stamp, line))
        envelope = encode(
            [(stamp, line)],
            msg_id="m",
            host=sender.host,
            tag="build",
            pid=sender.pid,
            severity=severity,
        )
        (packed,) = decode(envelope, CONTENT_TYPE, {}, host="the-daemon")
        assert plain._replace(msgid="-") == packed._replace(msgid="-")
        assert plain.host == sender.host != "the-daemon"

    def test_a_line_without_a_readable_time_gets_now(self) -> None:
        """A time that does not parse (never from the reader) is replaced by the time of sending."""
        before = now_timestamp()
        (record,) = decoded(emitter()._plain("not a time", "x"))
        assert before <= record.timestamp <= now_timestamp()


class TestPlainBody:
    """A body is always valid UTF-8, as its content_encoding says."""

    @pytest.mark.parametrize(
        ("line", "body"),
        [
            ("plain", b"plain"),
            ("caf\udce9", b"caf\\xe9"),  # an argument holding an undecodable byte
            ("\ud800 lone", b"\\ud800 lone"),
        ],
    )
    def test_body(self, line: str, body: bytes) -> None:
        """Undecodable bytes show as ``\\xNN``, as the line reader shows them on stdin."""
        assert plain_body(line) == body
        body.decode("utf-8")
