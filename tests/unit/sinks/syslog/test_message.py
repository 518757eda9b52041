"""Syslog messages as the sink builds them: RFC 5424 and 3164 headers, structured data, size."""

from __future__ import annotations

import re
import socket

import pytest
from syslogkit import BSD_STAMP, MakeSink, read_octet_frames, record

from logfan.sinks.syslog.message import check_sd_id, header_field


class TestRfc5424Frames:
    def test_frame_fields(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """PRI is facility*8+severity; timestamp, host, tag and pid fill the header; no BOM."""
        sink = make_sink(address=udp_address, facility="local3")
        sink.write([record(severity="err")])
        assert udp_receiver.recv(65536) == b"<155>1 2026-11-27T06:12:59.123Z web1 app 42 - - hello"

    def test_defaults_to_facility_user(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """Without ``facility`` the PRI uses user (1): info is <14>."""
        make_sink(address=udp_address).write([record()])
        assert udp_receiver.recv(65536).startswith(b"<14>1 ")

    def test_facility_as_number(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """A facility given as a number 0-23 is used as is: 23 (local7) with debug is <191>."""
        make_sink(address=udp_address, facility=23).write([record(severity="debug")])
        assert udp_receiver.recv(65536).startswith(b"<191>1 ")

    @pytest.mark.parametrize(
        ("stamp", "sent"),
        [
            ("yesterday", b"-"),
            ("2026-13-01T00:00:00Z", b"-"),
            ("2026-11-27 06:12:59", b"-"),
            ("2026-11-27T06:12:59.123456789+01:00", b"2026-11-27T06:12:59.123456+01:00"),
            ("2026-11-27t06:12:59z", b"2026-11-27T06:12:59Z"),
        ],
    )
    def test_timestamp_checked(
        self,
        make_sink: MakeSink,
        udp_address: str,
        udp_receiver: socket.socket,
        stamp: str,
        sent: bytes,
    ) -> None:
        """A timestamp that is not RFC 3339 is sent as '-'; a valid one in RFC 5424's form."""
        make_sink(address=udp_address).write([record(timestamp=stamp)])
        assert udp_receiver.recv(65536).split(b" ")[1] == sent

    def test_header_fields_sanitised(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """Header fields keep printable ASCII only, are cut to RFC lengths, and '' becomes '-'."""
        sink = make_sink(address=udp_address)
        sink.write([record(host="hôte 1", tag="my app\n" + "x" * 60, pid="")])
        fields = udp_receiver.recv(65536).split(b" ")
        assert fields[2:5] == [b"h_te_1", b"my_app\\n" + b"x" * 40, b"-"]

    def test_local_hostname_when_record_has_none(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """A record whose host is '-' is sent with this machine's short hostname."""
        make_sink(address=udp_address).write([record(host="-")])
        short = socket.gethostname().split(".")[0]
        assert udp_receiver.recv(65536).split(b" ")[2] == short.encode()

    def test_hostname_option_overrides(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """The ``hostname`` option replaces the record's host."""
        make_sink(address=udp_address, hostname="relay.example").write([record()])
        assert udp_receiver.recv(65536).split(b" ")[2] == b"relay.example"

    def test_newlines_escaped(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """CR, LF and ESC in a message are escaped so the datagram stays one line."""
        make_sink(address=udp_address).write([record("one\r\ntwo\x1b[31m")])
        assert udp_receiver.recv(65536).endswith(b" - - one\\r\\ntwo\\x1b[31m")

    def test_non_ascii_message_intact(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """A non-ASCII message arrives as the same UTF-8 text, without a BOM."""
        text = "naïve café 日本語 🙂"
        make_sink(address=udp_address).write([record(text)])
        assert udp_receiver.recv(65536).endswith(b" - - " + text.encode())

    def test_format_template(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """``format`` builds the MSG part from the record's fields."""
        make_sink(address=udp_address, format="{severity}: {message}").write([record()])
        assert udp_receiver.recv(65536).endswith(b" - - info: hello")

    def test_one_datagram_per_record(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """A batch is sent as one datagram per record, in order."""
        make_sink(address=udp_address).write([record("first"), record("second")])
        assert udp_receiver.recv(65536).endswith(b"first")
        assert udp_receiver.recv(65536).endswith(b"second")

    def test_no_receiver_is_no_error(self, make_sink: MakeSink) -> None:
        """UDP to a port nobody listens on raises nothing, like any unconnected datagram."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sink = make_sink(address=f"udp://127.0.0.1:{port}")
        sink.open()
        sink.write([record()])
        sink.write([record()])

    def test_ipv6_address(self, make_sink: MakeSink) -> None:
        """A bracketed IPv6 address reaches a receiver on ::1."""
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as receiver:
            try:
                receiver.bind(("::1", 0))
            except OSError as exc:
                pytest.skip(f"no IPv6 loopback here: {exc}")
            receiver.settimeout(5)
            make_sink(address=f"udp://[::1]:{receiver.getsockname()[1]}").write([record()])
            assert receiver.recv(65536).endswith(b" - - hello")


class TestStructuredData:
    def test_metadata_under_the_configured_sd_id(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """With ``sd_id`` the record's own host, tag, pid, msgid and timestamp travel verbatim."""
        sink = make_sink(address=udp_address, sd_id="logfan@32473")
        sink.write([record(host="hôte 1", msgid="abc-1")])
        assert (
            udp_receiver.recv(65536)
            == (
                '<14>1 2026-11-27T06:12:59.123Z h_te_1 app 42 - [logfan@32473 host="hôte 1" '
                'tag="app" pid="42" msgid="abc-1" timestamp="2026-11-27T06:12:59.123Z"] hello'
            ).encode()
        )

    def test_param_values_escaped(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """'"', '\\' and ']' are escaped in PARAM-VALUEs; a newline is escaped like in MSG."""
        sink = make_sink(address=udp_address, sd_id="x@1")
        sink.write([record(tag='a"b\\c]d\ne', pid="-", host="-")])
        frame = udp_receiver.recv(65536)
        sd = frame[frame.index(b"[x@1") : frame.rindex(b" hello")]
        assert sd == rb'[x@1 tag="a\"b\\c\]d\\ne" timestamp="2026-11-27T06:12:59.123Z"]'

    def test_off_by_default(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """Without ``sd_id`` STRUCTURED-DATA is '-': logfan claims no enterprise number."""
        make_sink(address=udp_address).write([record()])
        assert b" 42 - - hello" in udp_receiver.recv(65536)

    def test_dropped_when_it_would_crowd_out_the_message(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """Structured data larger than half of max_message_bytes is left out, never MSG."""
        sink = make_sink(address=udp_address, sd_id="x@1", max_message_bytes=480)
        sink.write([record(msgid="m" * 200)])
        assert udp_receiver.recv(65536).endswith(b" 42 - - hello")


@pytest.mark.usefixtures("eastern_time")
class TestRfc3164Frames:
    def test_frame_in_local_time(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """The timestamp is the record's moment in local time, with the day padded by a space."""
        sink = make_sink(address=udp_address, protocol="rfc3164")
        sink.write([record(timestamp="2026-03-07T15:04:05.250Z", severity="notice")])
        assert udp_receiver.recv(65536) == b"<13>Mar  7 10:04:05 web1 app[42]: hello"

    def test_offset_converted(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """A timestamp with an offset is converted to local time, across a day boundary."""
        sink = make_sink(address=udp_address, protocol="rfc3164", facility="mail")
        sink.write([record(timestamp="2026-03-07T02:00:00+05:00", severity="warning")])
        assert udp_receiver.recv(65536) == b"<20>Mar  6 16:00:00 web1 app[42]: hello"

    def test_pid_left_out_when_unknown(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """``[PID]`` appears only when the record has a pid."""
        make_sink(address=udp_address, protocol="rfc3164").write([record(pid="-")])
        assert udp_receiver.recv(65536).endswith(b" web1 app: hello")

    def test_tag_sanitised(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """TAG keeps letters, digits and -_. only and at most 32 characters."""
        sink = make_sink(address=udp_address, protocol="rfc3164")
        sink.write([record(tag="my app:ü/" + "x" * 40, pid="-")])
        assert udp_receiver.recv(65536).endswith(b" web1 my_app___" + b"x" * 23 + b": hello")

    def test_bad_timestamp_gets_one(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """A record without a usable timestamp is still sent with a well-formed one."""
        make_sink(address=udp_address, protocol="rfc3164").write([record(timestamp="-")])
        assert BSD_STAMP.match(udp_receiver.recv(65536))


class TestTruncation:
    @pytest.mark.parametrize("shift", [0, 1, 2, 3, 4])
    def test_cut_on_character_boundary(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket, shift: int
    ) -> None:
        """A long message is cut between characters, ends with a marker, and is counted."""
        text = "a" * shift + "ü€😀" * 300
        sink = make_sink(address=udp_address, max_message_bytes=480)
        sink.write([record(text)])
        frame = udp_receiver.recv(65536)
        assert 470 < len(frame) <= 480
        msg = frame.decode("utf-8").split(" - - ", 1)[1]
        marked = re.fullmatch(r"(.*)\.\.\.\[truncated (\d+) bytes\]", msg)
        assert marked is not None, msg
        kept, cut = marked.groups()
        assert text.startswith(kept)
        assert len(kept.encode()) + int(cut) == len(text.encode())
        assert sink.truncated == 1

    def test_each_cut_counted(
        self, make_sink: MakeSink, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """``truncated`` counts every message cut, and only those."""
        sink = make_sink(address=udp_address)
        sink.write([record("x" * 3000), record("short"), record("y" * 3000)])
        frames = [udp_receiver.recv(65536) for _ in range(3)]
        assert [len(f) <= 2048 for f in frames] == [True, True, True]
        assert frames[1].endswith(b" - - short")
        assert sink.truncated == 2

    def test_stream_limit(
        self, make_sink: MakeSink, tcp_address: str, tcp_listener: socket.socket
    ) -> None:
        """Over TCP the default limit is 65536 bytes per message, framing not counted."""
        sink = make_sink(address=tcp_address)
        sink.write([record("z" * 70000)])
        conn, _ = tcp_listener.accept()
        with conn:
            (frame,) = read_octet_frames(conn, 1)
        assert frame.endswith(b"bytes]")
        assert 65500 < len(frame) <= 65536
        assert sink.truncated == 1


class TestHeaderFields:
    """Header fields are made valid rather than breaking the frame."""

    def test_printable_ascii_only(self) -> None:
        """Spaces and non-ASCII become '_'; a control is escaped first (``\\n``), never a break."""
        assert header_field("web 1", 255) == "web_1"
        assert header_field("né\n", 255) == "n_\\n"

    def test_cut_to_the_limit_and_never_empty(self) -> None:
        """Cut to the RFC's length; an empty field is '-'."""
        assert header_field("x" * 300, 48) == "x" * 48
        assert header_field("", 48) == "-"

    @pytest.mark.parametrize("sd_id", ["logfan@32473", "app@1.2.3"])
    def test_private_sd_ids_pass(self, sd_id: str) -> None:
        """NAME@PEN (PEN dotted numbers) is a private SD-ID."""
        assert check_sd_id(sd_id) is None

    @pytest.mark.parametrize("sd_id", ["logfan", "a b@1", "a=b@1", "x@pen", "a@1" + "1" * 40])
    def test_other_sd_ids_are_refused_with_the_rule(self, sd_id: str) -> None:
        """No '@PEN', a space, '=', a PEN that is not a number, or over 32 characters: refused."""
        reason = check_sd_id(sd_id)
        assert reason is not None
        assert reason.startswith("expected a private SD-ID NAME@PEN")
