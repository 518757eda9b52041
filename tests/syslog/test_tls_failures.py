"""TLS that cannot be trusted: the sink refuses, says why, keeps the lines, delivers after a fix."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from logfan_testkit import RABBITMQ_URL, Daemon, Setup, rabbitmq_up, run_logfan, tally, wait_for

sys.path.insert(0, str(Path(__file__).parent))
from receivers import SyslogNg, TestCA
from syslog_corpus import ENVELOPE_PROPS, FACILITY, SD_ID, compare, corpus, envelopes

pytestmark = [pytest.mark.syslog_ng, pytest.mark.rabbitmq, pytest.mark.processes]


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[SyslogNg, TestCA]]:
    """syslog-ng on TLS with a server certificate for localhost/127.0.0.1 from a test CA."""
    ca = TestCA(tmp_path, "ca")
    cert, key = ca.issue("server", server=True)
    tls = {"cert-file": str(cert), "key-file": str(key), "peer-verify": "optional-untrusted"}
    receiver = SyslogNg(tmp_path, "tls", tls).start()
    yield receiver, ca
    receiver.stop()


@pytest.fixture
def rabbit_setup(tmp_path: Path, rabbitmq: dict[str, Any]) -> Setup:
    """A Setup on the shared RabbitMQ."""
    assert rabbitmq_up()
    return Setup(RABBITMQ_URL, tmp_path, rabbitmq)


def write_config(setup: Setup, name: str, sink: dict[str, Any]) -> Path:
    """The daemon's config, with a status file so ``logfan status`` shows the daemon's figures."""
    path = setup.tmp / "logfan.yaml"
    doc = {
        "broker": {"url": setup.url, "exchange": setup.exchange, "prefetch": 1},
        "daemon": {"status_file": str(setup.tmp / "status.json")},
        "sinks": {name: sink},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


class TestTlsRefused:
    """A TLS peer the sink cannot verify, through ``logfan run`` on RabbitMQ."""

    @pytest.mark.parametrize(
        ("mistake", "reason"),
        [("wrong_ca", "TLS certificate verify failed"), ("wrong_name", "TLS hostname mismatch")],
    )
    def test_refused_then_fixed_and_reloaded(
        self,
        mistake: str,
        reason: str,
        rabbit_setup: Setup,
        daemons: list[Daemon],
        tls_receiver: tuple[SyslogNg, TestCA],
    ) -> None:
        """Nothing is sent; log and `logfan status` say why; after the fix every line arrives."""
        receiver, ca = tls_receiver
        setup = rabbit_setup
        name = setup.sink("tls")
        good = {
            "type": "syslog",
            "address": receiver.address,
            "facility": FACILITY,
            "sd_id": SD_ID,
            "max_message_bytes": 2048,
            "ca_file": str(ca.cert),
        }
        if mistake == "wrong_ca":
            bad = good | {"ca_file": str(TestCA(setup.tmp, "other-ca").cert)}
        else:
            bad = good | {"server_name": "wrong.example"}
        config = write_config(setup, name, bad)
        daemon = Daemon(config, setup.tmp).start()
        daemons.append(daemon)
        wait_for(lambda: "logfan ready" in daemon.logs(), what="logfan run to be ready")
        records = corpus()
        setup.publish_many(envelopes(records), **ENVELOPE_PROPS)

        wait_for(lambda: reason in daemon.logs(), what=f"{reason!r} in the daemon's log")
        wait_for(
            lambda: reason in run_logfan("status", "-c", str(config)).stdout.decode(),
            what=f"{reason!r} in the LAST ERROR column of `logfan status`",
        )
        status = run_logfan("status", "-c", str(config)).stdout.decode()
        print(status)
        queued = setup.queue_depth(f"logfan.{name}")
        assert queued >= 9, "the lines stay in the sink's queue (one message in hand, prefetch 1)"
        assert receiver.messages() == [], "nothing went to a peer that was not verified"

        write_config(setup, name, good)
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        check = {r.msgid for r in records}
        wait_for(
            lambda: check <= set(compare(records, receiver.messages())[0]),
            what="every line after the fix",
        )
        ids, problems = compare(records, receiver.messages())
        tally(name, sorted(check), ids)
        assert problems == []
        assert "config reloaded" in daemon.logs()
        print(f"queued while refused: {queued} messages of 100 lines")
        assert daemon.stop() == 0
