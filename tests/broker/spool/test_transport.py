"""The embedded broker's transport: its options and its folders."""

from __future__ import annotations

from pathlib import Path

import pytest
from kombu import Connection
from kombu.exceptions import ChannelError
from spoolkit import (
    connect,
    declare,
    publish,
)

from logfan.daemon.broker.spool.transport import Transport

pytestmark = [pytest.mark.processes]


class TestTransport:
    def test_polling_interval(self, root: Path) -> None:
        """The polling interval defaults to 0.05 s and follows transport_options."""
        assert connect(root).transport.polling_interval == 0.05
        assert connect(root, polling_interval=0.2).transport.polling_interval == 0.2

    def test_root_is_required(self) -> None:
        """A transport without a root says which option is missing."""
        with pytest.raises(ValueError, match="'root'"):
            _ = Connection(transport=Transport).transport

    def test_roots_are_isolated(self, tmp_path: Path) -> None:
        """Two transports in one process with different roots share no bindings or messages."""
        with connect(tmp_path / "a") as a, connect(tmp_path / "b") as b:
            declare(a, "logfan.file1")
            declare(b, "logfan.file1")
            publish(b, b"for b")
            assert a.channel().basic_get("logfan.file1") is None
            assert b.channel().basic_get("logfan.file1", no_ack=True).body == b"for b"
            publish(a, b"for a")
            assert b.channel().basic_get("logfan.file1") is None
            assert a.channel().basic_get("logfan.file1", no_ack=True).body == b"for a"

    def test_depth_passive_declare_and_purge(self, conn: Connection) -> None:
        """Passive declare reports depth or refuses a missing queue; purge empties a queue."""
        declare(conn, "logfan.file1")
        for _ in range(3):
            publish(conn, b"{}")
        channel = conn.channel()
        assert channel.queue_declare(queue="logfan.file1", passive=True).message_count == 3
        with pytest.raises(ChannelError, match="NOT_FOUND"):
            channel.queue_declare(queue="logfan.nothing", passive=True)
        assert channel.queue_purge("logfan.file1") == 3
        assert channel.queue_declare(queue="logfan.file1", passive=True).message_count == 0

    def test_bad_queue_name_refused(self, conn: Connection) -> None:
        """A queue name that would escape the queues folder is refused."""
        with pytest.raises(ChannelError, match="invalid queue name"):
            conn.channel().queue_declare(queue="../escape")
