"""The syslog sink against a real syslog-ng: every transport, its parsed fields, a restart."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from logfan_testkit import Daemon, Setup, tally, wait_for

# The helpers beside this file; pytest's importlib mode does not put this folder on the path.
sys.path.insert(0, str(Path(__file__).parent))
from receivers import SyslogNg, TestCA
from syslog_corpus import (
    ENVELOPE_PROPS,
    FACILITY,
    LINES,
    MAX_BYTES,
    SD_ID,
    compare,
    corpus,
    envelopes,
)

from logfan.sinks.base import Options, Record
from logfan.sinks.syslog import SyslogSink

pytestmark = [pytest.mark.syslog_ng, pytest.mark.rabbitmq, pytest.mark.processes]

KINDS = ["udp", "tcp", "tcp-lf", "tls", "unix-dgram", "unix-stream"]


@pytest.fixture
def receivers() -> Iterator[list[SyslogNg]]:
    """syslog-ng instances a test starts; all are stopped at the end."""
    started: list[SyslogNg] = []
    yield started
    for receiver in started:
        receiver.stop()


def sink_options(receiver: SyslogNg, tmp_path: Path) -> dict[str, object]:
    """Options for a sink sending to ``receiver`` with the framing its source reads."""
    options: dict[str, object] = {
        "address": receiver.address,
        "facility": FACILITY,
        "sd_id": SD_ID,
        "max_message_bytes": MAX_BYTES,
    }
    if receiver.kind in ("tcp-lf", "unix-stream"):
        options["framing"] = "lf"
    if receiver.kind == "tls":
        options |= {"ca_file": str(tmp_path / "ca" / "ca.pem"), "server_name": "localhost"}
        options |= {"cert_file": str(tmp_path / "ca" / "client.pem")}
        options |= {"key_file": str(tmp_path / "ca" / "client.key")}
    return options


def start_receiver(kind: str, tmp_path: Path, receivers: list[SyslogNg]) -> SyslogNg:
    """A syslog-ng for ``kind``; for TLS with a CA made here that also checks our client cert."""
    tls = None
    if kind == "tls":
        ca = TestCA(tmp_path)
        cert, key = ca.issue("server", server=True)
        ca.issue("client", server=False)
        tls = {
            "cert-file": str(cert),
            "key-file": str(key),
            "ca-file": str(ca.cert),
            "peer-verify": "required-trusted",
        }
    receiver = SyslogNg(tmp_path, kind, tls)
    receivers.append(receiver.start())
    return receiver


def start_daemon(setup: Setup, daemons: list[Daemon], config: Path) -> Daemon:
    """``logfan run`` on ``config``, once its queues are bound (lines published then are kept)."""
    daemon = Daemon(config, setup.tmp).start()
    daemons.append(daemon)
    wait_for(lambda: "logfan ready" in daemon.logs(), what="logfan run to be ready")
    return daemon


def check_all_arrived(
    name: str, records: list[Record], receiver: SyslogNg, *, once: bool = False
) -> None:
    """Wait for every line, then compare each parsed message with what was sent; print figures.

    ``once``: each line is sent once, so as many messages as lines means all are in (whatever
    syslog-ng made of them); otherwise wait until every message id was seen.
    """
    want = {r.msgid for r in records}
    wait_for(
        lambda: (
            (once and len(receiver.messages()) >= len(records))
            or want <= set(compare(records, receiver.messages())[0])
        ),
        what=f"{len(records)} lines at syslog-ng ({receiver.kind})",
    )
    ids, problems = compare(records, receiver.messages())
    tally(name, sorted(want), ids)
    assert problems == [], "\n".join(problems[:10])


class TestSinkToSyslogNg:
    """SyslogSink itself, sending 1,000 lines to syslog-ng over each transport."""

    @pytest.mark.parametrize("kind", KINDS)
    def test_fields_as_parsed_by_syslog_ng(
        self, kind: str, tmp_path: Path, receivers: list[SyslogNg]
    ) -> None:
        """syslog-ng's own $FACILITY, $LEVEL, $HOST, $PROGRAM, $PID, $MSG and SD match each line.

        The lines hold non-ASCII text, a newline (one message, never two), quotes and brackets
        (escaped in SD-PARAMs), a host and tag that need sanitizing (the originals travel in the
        structured data) and a line longer than max_message_bytes (cut with a marker, counted).
        """
        receiver = start_receiver(kind, tmp_path, receivers)
        sink = SyslogSink("remote", Options("remote", sink_options(receiver, tmp_path)))
        records = corpus()
        try:
            for start in range(0, LINES, 100):
                sink.write(records[start : start + 100])
        finally:
            sink.close()
        check_all_arrived(f"remote ({kind})", records, receiver, once=True)
        assert len(receiver.messages()) == LINES, "no line was split or sent twice"
        assert (sink.truncated, sink.dropped) == (1, 0)


class TestDaemonToSyslogNg:
    """The whole path: publisher, broker, ``logfan run``, syslog sink, syslog-ng."""

    def test_tcp_end_to_end(
        self, setup: Setup, daemons: list[Daemon], receivers: list[SyslogNg]
    ) -> None:
        """1,000 lines published as envelopes reach syslog-ng over TCP with every field intact."""
        receiver = start_receiver("tcp", setup.tmp, receivers)
        name = setup.sink("remote")
        config = setup.config({name: {"type": "syslog", **sink_options(receiver, setup.tmp)}})
        daemon = start_daemon(setup, daemons, config)
        records = corpus()
        setup.publish_many(envelopes(records), **ENVELOPE_PROPS)
        check_all_arrived(name, records, receiver)
        assert daemon.stop() == 0

    def test_receiver_restarted(
        self, setup: Setup, daemons: list[Daemon], receivers: list[SyslogNg]
    ) -> None:
        """syslog-ng stopped while lines keep coming: every line arrives once it is back."""
        receiver = start_receiver("tcp", setup.tmp, receivers)
        name = setup.sink("remote")
        config = setup.config(
            {name: {"type": "syslog", **sink_options(receiver, setup.tmp)}}, prefetch=100
        )
        daemon = start_daemon(setup, daemons, config)
        records = corpus()
        bodies = envelopes(records)
        setup.publish_many(bodies[:3], **ENVELOPE_PROPS)
        check_all_arrived(name, records[:300], receiver)

        receiver.stop()
        setup.publish_many(bodies[3:], **ENVELOPE_PROPS)
        wait_for(lambda: "sink write failed; retrying" in daemon.logs(), what="the sink to fail")
        during = len(receiver.messages())
        receiver.start()
        check_all_arrived(name, records, receiver)
        assert during == 300, "nothing could arrive while syslog-ng was down"
        assert "sink recovered" in daemon.logs()
        assert daemon.stop() == 0
