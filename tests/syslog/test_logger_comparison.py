"""logfan's syslog frames beside util-linux ``logger``'s, for the same message, tag and priority."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from receivers import need

from logfan.daemon.envelope import now_timestamp
from logfan.sinks.base import Options, Record
from logfan.sinks.syslog import SyslogSink

pytestmark = [pytest.mark.processes]

MESSAGE = "disk almost full: /var 97% ü"
RFC5424_FIELDS = ("PRI", "VERSION", "TIMESTAMP", "HOSTNAME", "APP-NAME", "PROCID", "MSGID")
# <PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG
RFC3164 = re.compile(
    rb"<(\d+)>([A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (\S+) ([^\[:]+)\[(\d+)\]: (.*)"
)


@pytest.fixture
def receiver() -> Iterator[socket.socket]:
    """A plain UDP socket: the frames exactly as they were sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)  # a hang guard only
        yield sock


def rfc5424_fields(frame: bytes) -> dict[str, bytes]:
    """The header fields, STRUCTURED-DATA and MSG of an RFC 5424 frame."""
    pri_version, stamp, host, app, pid, msgid, rest = frame.split(b" ", 6)
    pri, version = pri_version[1:].split(b">")
    if rest.startswith(b"-"):
        sd, msg = b"-", rest[2:]
    else:
        end = rest.index(b"] ") + 1  # the frames here hold one SD-ELEMENT without "] " inside
        sd, msg = rest[:end], rest[end + 1 :]
    values = (pri, version, stamp, host, app, pid, msgid)
    return dict(zip(RFC5424_FIELDS, values, strict=True)) | {"STRUCTURED-DATA": sd, "MSG": msg}


def rfc3164_fields(frame: bytes) -> dict[str, bytes]:
    """PRI, TIMESTAMP, HOSTNAME, TAG, PID and MSG of an RFC 3164 frame as logger writes it."""
    match = RFC3164.fullmatch(frame)
    assert match is not None, frame
    names = ("PRI", "TIMESTAMP", "HOSTNAME", "TAG", "PID", "MSG")
    return dict(zip(names, match.groups(), strict=True))


def logger_frame(receiver: socket.socket, protocol: str) -> bytes:
    """What ``logger`` sends for MESSAGE, tag app, local3.err, pid 4242."""
    port = str(receiver.getsockname()[1])
    logger = need("logger", "util-linux")
    command = [logger, "--server", "127.0.0.1", "--port", port, "--udp", f"--{protocol}"]
    subprocess.run([*command, "-t", "app", "-p", "local3.err", "--id=4242", MESSAGE], check=True)
    return receiver.recv(65536)


def logfan_frame(receiver: socket.socket, protocol: str, **options: str) -> bytes:
    """What the syslog sink sends for the same line."""
    address = f"udp://127.0.0.1:{receiver.getsockname()[1]}"
    all_options = {"address": address, "protocol": protocol, "facility": "local3", **options}
    sink = SyslogSink("remote", Options("remote", all_options))
    line = Record(MESSAGE, now_timestamp(), tag="app", severity="err", pid="4242")
    try:
        sink.write([line])
    finally:
        sink.close()
    return receiver.recv(65536)


def differing(ours: dict[str, bytes], theirs: dict[str, bytes]) -> set[str]:
    """The names of the fields whose values differ, after printing both frames side by side."""
    for name, value in theirs.items():
        mark = "  " if ours[name] == value else "!="
        print(f"{mark} {name:16} logger={value!r:48} logfan={ours[name]!r}")
    return {name for name in theirs if ours[name] != theirs[name]}


class TestSameAsLogger:
    """Frame by frame, logfan and logger agree but for the fields that must differ."""

    def test_rfc5424(self, receiver: socket.socket) -> None:
        """RFC 5424: only TIMESTAMP (another moment) and STRUCTURED-DATA (logger's timeQuality)."""
        theirs = rfc5424_fields(logger_frame(receiver, "rfc5424"))
        ours = rfc5424_fields(logfan_frame(receiver, "rfc5424"))
        assert differing(ours, theirs) == {"TIMESTAMP", "STRUCTURED-DATA"}
        assert ours["STRUCTURED-DATA"] == b"-"

    def test_rfc5424_with_structured_data(self, receiver: socket.socket) -> None:
        """With ``sd_id`` only the STRUCTURED-DATA content changes: logfan's metadata in it."""
        theirs = rfc5424_fields(logger_frame(receiver, "rfc5424"))
        ours = rfc5424_fields(logfan_frame(receiver, "rfc5424", sd_id="logfan@32473"))
        assert differing(ours, theirs) == {"TIMESTAMP", "STRUCTURED-DATA"}
        assert ours["STRUCTURED-DATA"].startswith(b'[logfan@32473 tag="app" pid="4242" timestamp=')

    def test_rfc3164(self, receiver: socket.socket) -> None:
        """RFC 3164 (logger's default): only TIMESTAMP may differ (it is to the second)."""
        theirs = rfc3164_fields(logger_frame(receiver, "rfc3164"))
        ours = rfc3164_fields(logfan_frame(receiver, "rfc3164"))
        assert differing(ours, theirs) <= {"TIMESTAMP"}
