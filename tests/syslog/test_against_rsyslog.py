"""The syslog sink against a real rsyslog 8.2302 (Debian's, unpacked by `make test`).

The same corpus as against syslog-ng (non-ASCII, a newline, quotes and brackets in structured
data, a host and tag that need sanitizing, a line over ``max_message_bytes``), parsed by
rsyslog's own inputs: imudp, imtcp (octet counting and LF), imtcp over TLS (ossl), and imuxsock
for the local dialect on a unix socket; structured data through mmpstrucdata.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from logfan_testkit import tally, wait_for

from logfan.sinks.base import Options, Record
from logfan.sinks.syslog import SyslogSink

pytestmark = [pytest.mark.rsyslog, pytest.mark.processes]

import sys  # noqa: E402 - the helpers beside this file need this folder on the path

sys.path.insert(0, str(Path(__file__).parent))
from receivers import Rsyslog, TestCA  # noqa: E402
from syslog_corpus import FACILITY, LINES, MAX_BYTES, SD_ID, compare, corpus  # noqa: E402


@pytest.fixture
def receivers() -> Iterator[list[Rsyslog]]:
    """rsyslog instances a test starts; all are stopped at the end."""
    started: list[Rsyslog] = []
    yield started
    for receiver in started:
        receiver.stop()


def start(kind: str, tmp_path: Path, receivers: list[Rsyslog]) -> tuple[Rsyslog, dict[str, object]]:
    """An rsyslog for ``kind`` and the options of a sink sending to it."""
    options: dict[str, object] = {"address": "", "facility": FACILITY, "sd_id": SD_ID}
    options["max_message_bytes"] = MAX_BYTES
    tls = None
    if kind == "tls":
        ca = TestCA(tmp_path)
        cert, key = ca.issue("server", server=True)
        client, client_key = ca.issue("client", server=False)
        tls = {"ca": str(ca.cert), "cert": str(cert), "key": str(key)}
        options |= {"ca_file": str(ca.cert), "server_name": "localhost"}
        options |= {"cert_file": str(client), "key_file": str(client_key)}
    if kind == "tcp-lf":
        options["framing"] = "lf"
    receiver = Rsyslog(tmp_path, kind, tls)
    receivers.append(receiver.start())
    options["address"] = receiver.address
    return receiver, options


class TestSinkToRsyslog:
    """SyslogSink itself, sending the corpus to rsyslog over each transport."""

    @pytest.mark.parametrize("kind", ["udp", "tcp", "tcp-lf", "tls"])
    def test_fields_as_parsed_by_rsyslog(
        self, kind: str, tmp_path: Path, receivers: list[Rsyslog]
    ) -> None:
        """rsyslog's facility, severity, hostname, programname, procid, msg and the structured
        data (mmpstrucdata) match each line, as syslog-ng's do."""
        receiver, options = start(kind, tmp_path, receivers)
        sink = SyslogSink("remote", Options("remote", options))
        records = corpus()
        try:
            for at in range(0, LINES, 100):
                sink.write(records[at : at + 100])
                sink.flush()
        finally:
            sink.close()
        wait_for(lambda: len(receiver.messages()) >= LINES, what=f"{LINES} lines at rsyslog")
        ids, problems = compare(records, receiver.messages())
        tally(f"remote ({kind}, rsyslog)", sorted(r.msgid for r in records), ids)
        assert problems == [], "\n".join(problems[:10])
        assert len(receiver.messages()) == LINES, "no line was split or sent twice"

    def test_local_dialect_on_a_unix_socket(self, tmp_path: Path, receivers: list[Rsyslog]) -> None:
        """RFC 3164 to a unix socket read by imuxsock: programname and procid are the line's tag
        and pid (no HOSTNAME in the way), the message follows."""
        receiver, options = start("unix-dgram", tmp_path, receivers)
        options = {k: v for k, v in options.items() if k not in ("sd_id", "max_message_bytes")}
        sink = SyslogSink("local", Options("local", {**options, "protocol": "rfc3164"}))
        records = [
            Record(f"local line {i}", "2026-11-27T06:12:59.123Z", "web1", "app", "err", "42")
            for i in range(200)
        ]
        try:
            sink.write(records)
            sink.flush()
        finally:
            sink.close()
        wait_for(lambda: len(receiver.messages()) >= len(records), what="200 lines at imuxsock")
        got = receiver.messages()
        assert {(m["program"], m["pid"], m["level"], m["facility"]) for m in got} == {
            ("app", "42", "err", FACILITY)
        }
        # rsyslog keeps the space after "app[42]:" in msg, as it does for syslog(3) itself
        assert [m["msg"].removeprefix(" ") for m in got] == [r.message for r in records]
