"""The syslog sink's options: each refusal names the option and quotes the value."""

from __future__ import annotations

from typing import Any

import pytest

from logfan.sinks.base import Options, SinkConfigError
from logfan.sinks.syslog import SyslogSink


class TestOptions:
    @pytest.mark.parametrize(
        ("options", "key", "quoted"),
        [
            ({"address": "http://logs.example"}, "address", "'http://logs.example'"),
            ({"address": "tcp://logs.example:70000"}, "address", "'tcp://logs.example:70000'"),
            ({"address": "udp://logs.example:syslog"}, "address", "'udp://logs.example:syslog'"),
            ({"address": "udp://logs.example:0"}, "address", "'udp://logs.example:0'"),
            ({"address": "unix://dev/log"}, "address", "'unix://dev/log'"),
            ({"facility": "local9"}, "facility", "'local9'"),
            ({"facility": 24}, "facility", "24"),
            ({"protocol": "rfc9999"}, "protocol", "'rfc9999'"),
            ({"framing": "nul"}, "framing", "'nul'"),
            ({"address": "udp://127.0.0.1", "framing": "lf"}, "framing", "udp://127.0.0.1"),
            ({"max_message_bytes": 100}, "max_message_bytes", "100"),
            ({"address": "udp://h", "max_message_bytes": 70000}, "max_message_bytes", "70000"),
            ({"hostname": "two words"}, "hostname", "'two words'"),
            ({"format": "{nope}"}, "format", "{nope}"),
            ({"sd_id": "logfan"}, "sd_id", "'logfan'"),
            ({"sd_id": "log fan@1"}, "sd_id", "'log fan@1'"),
            ({"sd_id": "logfan@x"}, "sd_id", "'logfan@x'"),
            ({"sd_id": "l" * 30 + "@123"}, "sd_id", "NAME@PEN"),
            ({"address": "tcp://h", "ca_file": "/ca.pem"}, "ca_file", "tls:// only"),
            ({"address": "tls://h", "ca_file": "/nonexistent.pem"}, "ca_file", "nonexistent"),
            ({"address": "tls://h", "key_file": "/k.pem"}, "key_file", "needs cert_file"),
            ({"address": "tls://h", "cert_file": "/c.pem"}, "cert_file", "/c.pem"),
            ({"colour": "red"}, "colour", "valid options are"),
        ],
    )
    def test_bad_option_refused(self, options: dict[str, Any], key: str, quoted: str) -> None:
        """A bad or unknown option raises SinkConfigError naming it and quoting the value."""
        with pytest.raises(SinkConfigError) as caught:
            SyslogSink("remote", Options("remote", options))
        assert caught.value.key == key
        assert quoted in str(caught.value)

    def test_bad_address_lists_valid_forms(self) -> None:
        """The error for a bad address says which forms are valid."""
        with pytest.raises(SinkConfigError, match=r"udp://HOST\[:PORT\], tcp://HOST\[:PORT\]"):
            SyslogSink("remote", Options("remote", {"address": "syslog.example:514"}))

    @pytest.mark.parametrize(
        ("address", "shown"),
        [
            ("udp://[::1]:5514", "udp://[::1]:5514"),
            ("tcp://logs.example", "tcp://logs.example:514"),
            ("tls://logs.example", "tls://logs.example:6514"),
            ("unix:///run/systemd/journal/syslog", "unix:///run/systemd/journal/syslog"),
        ],
    )
    def test_address_forms(self, address: str, shown: str) -> None:
        """IPv6 hosts in brackets are accepted and the port defaults to 514."""
        sink = SyslogSink("remote", Options("remote", {"address": address}))
        assert str(sink.address) == shown

    def test_defaults(self) -> None:
        """Defaults: /dev/log, RFC 5424, facility user, octet counting, 65536-byte messages."""
        sink = SyslogSink("remote", Options("remote", {}))
        assert (str(sink.address), sink.protocol, sink.facility) == (
            "unix:///dev/log",
            "rfc5424",
            1,
        )
        assert (sink.framing, sink.max_message_bytes) == ("octet-counting", 65536)

    def test_udp_default_limit(self) -> None:
        """Over UDP messages are limited to 2048 bytes unless configured otherwise."""
        sink = SyslogSink("remote", Options("remote", {"address": "udp://127.0.0.1"}))
        assert sink.max_message_bytes == 2048
