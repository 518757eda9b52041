"""Where the syslog sink sends: TCP framing, unix sockets, reconnecting after a hang-up."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from syslogkit import BSD_STAMP, MakeSink, read_lines, read_octet_frames, record

from logfan.sinks.base import RetryableSinkError
from logfan.sinks.syslog import transport
from logfan.sinks.syslog.transport import Address, parse_address


class TestTcpFraming:
    def test_octet_counting_by_default(
        self, make_sink: MakeSink, tcp_address: str, tcp_listener: socket.socket
    ) -> None:
        """Each record is one octet-counted frame; an embedded newline is escaped inside it."""
        sink = make_sink(address=tcp_address)
        sink.write([record("first"), record("line one\nline two"), record("last")])
        conn, _ = tcp_listener.accept()
        with conn:
            frames = read_octet_frames(conn, 3)
        assert [f.split(b" - - ", 1)[1] for f in frames] == [
            b"first",
            b"line one\\nline two",
            b"last",
        ]
        assert frames[0] == b"<14>1 2026-11-27T06:12:59.123Z web1 app 42 - - first"

    def test_lf_framing(
        self, make_sink: MakeSink, tcp_address: str, tcp_listener: socket.socket
    ) -> None:
        """With ``framing: lf`` each record is one line, even one holding a newline."""
        sink = make_sink(address=tcp_address, framing="lf", protocol="rfc3164")
        sink.write([record("line one\nline two", timestamp="-"), record("last", timestamp="-")])
        conn, _ = tcp_listener.accept()
        with conn:
            lines = read_lines(conn, 2)
        assert [line.split(b": ", 1)[1] for line in lines] == [b"line one\\nline two", b"last"]

    def test_open_connects(
        self, make_sink: MakeSink, tcp_address: str, tcp_listener: socket.socket
    ) -> None:
        """``open`` connects before any record is written."""
        make_sink(address=tcp_address).open()
        conn, _ = tcp_listener.accept()
        conn.close()

    def test_no_receiver_is_retryable(self, make_sink: MakeSink) -> None:
        """Nobody listening: ``open`` raises a retryable error naming the sink and address."""
        with socket.create_server(("127.0.0.1", 0)) as probe:
            port = probe.getsockname()[1]
        sink = make_sink(address=f"tcp://127.0.0.1:{port}")
        with pytest.raises(RetryableSinkError, match=f"'remote'.*tcp://127.0.0.1:{port}"):
            sink.open()


class TestUdp:
    def test_no_receiver_is_no_error_and_a_new_one_gets_every_later_line(
        self, make_sink: MakeSink
    ) -> None:
        """Nothing listening: the port-unreachable replies never fail a batch. A receiver that
        starts listening on the port gets every line sent from then on, none lost to a refusal
        an earlier datagram drew."""
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        sink = make_sink(address=f"udp://127.0.0.1:{port}")
        for n in range(5):  # each datagram draws a refusal the next send finds
            sink.write([record(message=f"lost {n}")])
            sink.flush()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
            receiver.bind(("127.0.0.1", port))
            receiver.settimeout(5)
            sink.write([record(message=f"line {n}") for n in range(20)])
            got = [receiver.recv(65536).rsplit(b" ", 2)[-2:] for _ in range(20)]
        assert got == [[b"line", str(n).encode()] for n in range(20)]
        assert sink.dropped == 0


class TestUnixSockets:
    def test_rfc3164_is_the_local_dialect(
        self, make_sink: MakeSink, tmp_path: Path, udp_address: str, udp_receiver: socket.socket
    ) -> None:
        """RFC 3164 to /dev/log is what syslog(3) writes, with no HOSTNAME, so the local
        daemon takes TAG[PID] as the identifier; over the network HOSTNAME stays."""
        path = str(tmp_path / "log")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(path)
            receiver.settimeout(5)
            make_sink(address=f"unix://{path}", protocol="rfc3164").write([record("hi")])
            local = receiver.recv(65536)
        make_sink(address=udp_address, protocol="rfc3164").write([record("hi")])
        network = udp_receiver.recv(65536)
        local_stamp, network_stamp = BSD_STAMP.match(local), BSD_STAMP.match(network)
        assert local_stamp is not None
        assert network_stamp is not None
        assert local[local_stamp.end() :] == b"app[42]: hi"
        assert network[network_stamp.end() :] == b"web1 app[42]: hi"

    def test_datagram_socket(self, make_sink: MakeSink, tmp_path: Path) -> None:
        """A datagram unix socket gets one unframed message per record."""
        path = str(tmp_path / "log")
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
            receiver.bind(path)
            receiver.settimeout(5)
            make_sink(address=f"unix://{path}").write([record("a\nb"), record("c")])
            assert receiver.recv(65536) == b"<14>1 2026-11-27T06:12:59.123Z web1 app 42 - - a\\nb"
            assert receiver.recv(65536).endswith(b" - - c")

    def test_stream_socket(self, make_sink: MakeSink, tmp_path: Path) -> None:
        """A stream unix socket is detected and gets one line per record by default."""
        path = str(tmp_path / "log")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen()
            server.settimeout(5)
            make_sink(address=f"unix://{path}").write([record("a\nb"), record("c")])
            conn, _ = server.accept()
            with conn:
                lines = read_lines(conn, 2)
        assert [f.split(b" - - ", 1)[1] for f in lines] == [b"a\\nb", b"c"]

    def test_stream_socket_octet_counting(self, make_sink: MakeSink, tmp_path: Path) -> None:
        """``framing: octet-counting`` applies to a stream unix socket too."""
        path = str(tmp_path / "log")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            server.listen()
            server.settimeout(5)
            sink = make_sink(address=f"unix://{path}", framing="octet-counting")
            sink.write([record("a"), record("c")])
            conn, _ = server.accept()
            with conn:
                frames = read_octet_frames(conn, 2)
        assert [f.split(b" - - ", 1)[1] for f in frames] == [b"a", b"c"]

    def test_missing_socket_is_retryable(self, make_sink: MakeSink, tmp_path: Path) -> None:
        """No socket at the path: a retryable error naming the sink and address."""
        path = tmp_path / "absent"
        sink = make_sink(address=f"unix://{path}")
        with pytest.raises(RetryableSinkError, match=f"'remote'.*unix://{path}"):
            sink.write([record()])


class TestReconnect:
    def test_receiver_gone_then_back(self, make_sink: MakeSink) -> None:
        """A closed receiver makes write raise a retryable error; once back, writes go through."""
        server = socket.create_server(("127.0.0.1", 0))
        server.settimeout(5)
        port = server.getsockname()[1]
        sink = make_sink(address=f"tcp://127.0.0.1:{port}")
        sink.write([record("before")])
        conn, _ = server.accept()
        assert read_octet_frames(conn, 1)[0].endswith(b"before")
        conn.close()
        server.close()

        with pytest.raises(RetryableSinkError, match=f"'remote'.*tcp://127.0.0.1:{port}"):
            sink.write([record("while down")])

        with socket.create_server(("127.0.0.1", port)) as server:
            server.settimeout(5)
            sink.write([record("after")])
            conn, _ = server.accept()
            with conn:
                assert read_octet_frames(conn, 1)[0].endswith(b"after")

    def test_write_after_close_reconnects(
        self, make_sink: MakeSink, tcp_address: str, tcp_listener: socket.socket
    ) -> None:
        """``close`` drops the connection and the next write opens a new one."""
        sink = make_sink(address=tcp_address)
        sink.write([record("one")])
        sink.close()
        sink.write([record("two")])
        first, _ = tcp_listener.accept()
        second, _ = tcp_listener.accept()
        with first, second:
            assert read_octet_frames(first, 1)[0].endswith(b"one")
            assert read_octet_frames(second, 1)[0].endswith(b"two")


class TestParseAddress:
    """``address``: udp, tcp, tls with a host and an optional port, or a unix socket path."""

    @pytest.mark.parametrize(
        ("text", "scheme", "host", "port", "path"),
        [
            ("udp://127.0.0.1", "udp", "127.0.0.1", 514, ""),
            ("tcp://logs.example.org:1514", "tcp", "logs.example.org", 1514, ""),
            ("tls://logs.example.org", "tls", "logs.example.org", 6514, ""),
            ("tcp://[::1]:514/", "tcp", "::1", 514, ""),
            ("unix:///dev/log", "unix", "", 514, "/dev/log"),
        ],
    )
    def test_valid(self, text: str, scheme: str, host: str, port: int, path: str) -> None:
        """Default ports: 514, and 6514 for TLS (RFC 5425)."""
        assert parse_address(text) == Address(scheme, host, port, path)

    @pytest.mark.parametrize(
        "text",
        [
            "udp://",
            "tcp://host:0",
            "tcp://host:99999",
            "tcp://host:port",
            "tcp://user@host",
            "tcp://host/path",
            "tcp://host?x=1",
            "unix://relative/path",
            "http://host",
            "127.0.0.1:514",
        ],
    )
    def test_refused(self, text: str) -> None:
        """Anything else is no address (the sink's option check then names the forms)."""
        assert parse_address(text) is None

    def test_printed_with_its_port(self) -> None:
        """An address prints as a URL with its port; IPv6 hosts in brackets."""
        assert str(Address("tcp", "::1", 514)) == "tcp://[::1]:514"
        assert str(Address("unix", path="/dev/log")) == "unix:///dev/log"


class TestTaken:
    """A stream batch counts once the receiver's TCP stack took it, not once the kernel has it."""

    @pytest.fixture
    def slow_listener(self) -> Iterator[socket.socket]:
        """A TCP listener whose connections have the smallest receive buffer the kernel allows."""
        with socket.create_server(("127.0.0.1", 0)) as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            server.settimeout(5)
            yield server

    def test_a_reading_receiver_takes_the_batch(
        self, make_sink: MakeSink, tcp_address: str, tcp_listener: socket.socket
    ) -> None:
        """write then flush: flush returns once the receiver has every byte."""
        sink = make_sink(address=tcp_address)
        sink.write([record(f"line {i}") for i in range(1000)])
        conn, _ = tcp_listener.accept()
        with conn:
            sink.flush()
            assert len(read_octet_frames(conn, 1000)) == 1000

    def test_a_receiver_that_stops_reading_is_an_error(
        self,
        make_sink: MakeSink,
        slow_listener: socket.socket,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A receiver that accepts and never reads: flush raises a retryable error naming the
        bytes it did not take, and the socket is closed (the batch is sent again later)."""
        monkeypatch.setattr(transport, "TAKE_TIMEOUT", 0.5)
        sink = make_sink(address=f"tcp://127.0.0.1:{slow_listener.getsockname()[1]}")
        sink.write([record("x" * 90) for _ in range(100)])  # 10 KB: more than it can hold
        conn, _ = slow_listener.accept()
        with conn, pytest.raises(RetryableSinkError, match=r"did not take \d+ bytes in 0.5 s"):
            sink.flush()
        assert not sink._transport.connected

    def test_after_the_receiver_reads_again_the_batch_goes_through(
        self,
        make_sink: MakeSink,
        slow_listener: socket.socket,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """The retry of a batch that was not taken reconnects and is taken once read."""
        monkeypatch.setattr(transport, "TAKE_TIMEOUT", 0.5)
        sink = make_sink(address=f"tcp://127.0.0.1:{slow_listener.getsockname()[1]}")
        batch = [record(f"{i:03d}" + "x" * 90) for i in range(100)]
        sink.write(batch)
        stuck, _ = slow_listener.accept()
        with stuck, pytest.raises(RetryableSinkError):
            sink.flush()
        sink.write(batch)
        conn, _ = slow_listener.accept()
        with conn:
            got: list[bytes] = []
            reader = threading.Thread(target=lambda: got.extend(read_octet_frames(conn, 100)))
            reader.start()
            sink.flush()
            reader.join(10)
        assert len(got) == 100
