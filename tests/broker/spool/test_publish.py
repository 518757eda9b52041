"""Publishing to the embedded broker: whole messages, fanout, bindings across processes."""

from __future__ import annotations

import base64
import json
import os
import stat
import time
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection
from spoolkit import (
    CONTENT_TYPE,
    connect,
    declare,
    drain,
    files,
    publish,
    take_all,
)

from logfan.daemon.broker.spool.files import decode_payload

pytestmark = [pytest.mark.processes]


class TestPublish:
    def test_writes_tmp_then_renames(self, conn: Connection, root: Path, monkeypatch: Any) -> None:
        """A publish writes <stem>.tmp completely, then renames it to <stem>.msg in its folder."""
        declare(conn, "logfan.file1")
        renames: list[tuple[Path, Path, bytes]] = []
        real_rename = os.rename

        def spy(src: Any, dst: Any) -> None:
            renames.append((Path(src), Path(dst), Path(src).read_bytes()))
            real_rename(src, dst)

        monkeypatch.setattr(os, "rename", spy)
        publish(conn, b"whole body")
        ((src, dst, content),) = renames
        assert src.parent == dst.parent == root / "queues" / "logfan.file1"
        assert (src.suffix, dst.suffix, src.stem) == (".tmp", ".msg", dst.stem)
        assert decode_payload(content)["body"] == b"whole body"  # complete before it got its name
        assert files(root / "queues") == [dst]

    def test_get_ignores_half_written_tmp(self, conn: Connection, root: Path) -> None:
        """A .tmp left by a publisher that died mid-write is never delivered, even if oldest."""
        declare(conn, "logfan.file1")
        torn = root / "queues" / "logfan.file1" / "00000000000000000001-00000001-000000000000.tmp"
        torn.write_bytes(b'{"body": "tr')
        publish(conn, b"whole")
        channel = conn.channel()
        message = channel.basic_get("logfan.file1")
        assert message.body == b"whole"
        assert channel.basic_get("logfan.file1") is None
        assert torn.exists()

    def test_files_of_the_older_form_are_still_delivered(
        self, conn: Connection, root: Path
    ) -> None:
        """A message file from before (one JSON object, its body in base64) is delivered as it
        was published, in its place in the queue; a new-form file cut short is set aside."""
        declare(conn, "logfan.file1")
        folder = root / "queues" / "logfan.file1"
        old = {
            "body": base64.b64encode(b"from before").decode(),
            "content-type": "text/plain",
            "content-encoding": "utf-8",
            "headers": {"n": 1},
            "properties": {"body_encoding": "base64", "delivery_tag": "x", "delivery_info": {}},
        }
        (folder / "00000000000000000001-00000001-000000000000-11.msg").write_text(json.dumps(old))
        publish(conn, b"a whole new one")
        publish(conn, b"cut short")
        [*_, last] = sorted(folder.glob("*.msg"))
        last.write_bytes(last.read_bytes()[:-3])  # as a disk that lost the end of it would
        channel = conn.channel()
        first = channel.basic_get("logfan.file1", no_ack=True)
        assert (first.body, first.headers["n"]) == (b"from before", 1)
        assert channel.basic_get("logfan.file1", no_ack=True).body == b"a whole new one"
        assert channel.basic_get("logfan.file1", no_ack=True) is None
        assert [p.name for p in (root / "corrupt" / "logfan.file1").iterdir()] == [last.name]

    def test_stale_tmp_removed_at_start(self, conn: Connection, root: Path) -> None:
        """Starting a transport deletes .tmp files older than a minute and keeps recent ones."""
        declare(conn, "logfan.file1")
        folder = root / "queues" / "logfan.file1"
        stale, fresh = folder / "1.tmp", folder / "2.tmp"
        stale.write_bytes(b"x")
        fresh.write_bytes(b"x")
        os.utime(stale, (time.time() - 120, time.time() - 120))
        with connect(root) as other:
            other.channel()
        assert not stale.exists()
        assert fresh.exists()

    def test_message_round_trips(self, conn: Connection) -> None:
        """Body bytes, headers, content type and encoding, delivery info arrive as published."""
        (q,) = declare(conn, "logfan.file1")
        body = bytes(range(256)) + b'{"not": "utf-8"}'
        publish(conn, body, headers={"x-sink": "file1", "n": 3})
        (message,) = drain(conn, [q], 1)
        assert message.body == body
        assert message.headers == {"x-sink": "file1", "n": 3}
        assert message.content_type == CONTENT_TYPE
        assert message.content_encoding == "binary"
        assert message.delivery_info["exchange"] == "logs"
        assert message.properties["delivery_mode"] == 2
        assert not message.redelivered

    def test_default_exchange_routes_to_dotted_queue(self, conn: Connection) -> None:
        """Publishing to '' with a queue name reaches that queue only, dots in names or not."""
        declare(conn, "logfan.file1")
        conn.channel().queue_declare("logfan.file1.dead", durable=True)  # declared, not bound
        publish(conn, b"dead", exchange="", routing_key="logfan.file1.dead")
        publish(conn, b"live", exchange="", routing_key="logfan.file1")
        publish(conn, b"fanout")
        channel = conn.channel()
        assert channel.basic_get("logfan.file1.dead", no_ack=True).body == b"dead"
        assert channel.basic_get("logfan.file1", no_ack=True).body == b"live"
        assert channel.basic_get("logfan.file1", no_ack=True).body == b"fanout"
        assert channel.basic_get("logfan.file1.dead") is None
        assert channel.basic_get("logfan.file1") is None

    @pytest.mark.parametrize("enabled", [True, False])
    def test_fsync_option(self, root: Path, monkeypatch: Any, enabled: bool) -> None:
        """With fsync=True a publish syncs the message file and its folder; by default neither."""
        synced: list[str] = []
        real_fsync = os.fsync

        def spy(fd: int) -> None:
            synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
            real_fsync(fd)

        with connect(root, fsync=enabled) as connection:
            declare(connection, "logfan.file1")
            monkeypatch.setattr(os, "fsync", spy)
            publish(connection, b"{}")
        assert synced == (["file", "dir"] if enabled else [])


class TestUnbind:
    def test_unbind_reaches_other_processes(self, root: Path) -> None:
        """An unbound queue gets nothing from a publisher connected before or after the unbind."""
        with connect(root) as a, connect(root) as b:
            declare(a, "logfan.keep", "logfan.gone")
            publish(b, b"before")
            a.default_channel.queue_unbind("logfan.gone", "logs")
            publish(b, b"after")
            with connect(root) as c:
                publish(c, b"later")
            assert [m.body for m in take_all(a, "logfan.keep")] == [b"before", b"after", b"later"]
            assert [m.body for m in take_all(a, "logfan.gone")] == [b"before"]
