"""The embedded broker's files: stamps, body sizes, whole writes, x-death headers, claims."""

from __future__ import annotations

import base64
import json
import os
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logfan.daemon.broker.spool import files
from logfan.daemon.broker.spool.files import (
    LOCK,
    Payload,
    Stamps,
    add_death,
    body_size,
    decode_payload,
    encode_payload,
    redelivered_name,
    return_claims,
    size_of,
    write_file,
)


class TestStamps:
    """``Stamps.next``: unique stems that sort in call order within a process."""

    def test_unique_and_sorted_in_call_order(self) -> None:
        """Successive stamps are distinct and already in sorted (string) order."""
        stamps = Stamps()
        made = [stamps.next() for _ in range(2000)]
        assert len(set(made)) == len(made)
        assert made == sorted(made)

    def test_names_the_process(self) -> None:
        """A stamp carries this process's id, so two processes never make the same one."""
        assert f"-{os.getpid():08d}-" in Stamps().next()

    def test_clock_stepping_back(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A wall clock going backwards does not reorder the stamps."""
        clock = iter([5_000_000_000, 4_000_000_000, 4_000_000_000, 3_000_000_000])
        monkeypatch.setattr(files, "time", SimpleNamespace(time_ns=lambda: next(clock)))
        stamps = Stamps()
        made = [stamps.next() for _ in range(4)]
        assert made == sorted(made)
        assert len(set(made)) == 4

    def test_several_threads(self) -> None:
        """Called from several threads at once: all unique, each thread's in its call order."""
        stamps = Stamps()
        per_thread: list[list[str]] = [[] for _ in range(4)]
        start = threading.Barrier(len(per_thread))

        def take(out: list[str]) -> None:
            start.wait()
            for _ in range(1000):
                out.append(stamps.next())

        threads = [threading.Thread(target=take, args=(out,)) for out in per_thread]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        everything = [stamp for out in per_thread for stamp in out]
        assert len(set(everything)) == 4000
        for out in per_thread:
            assert out == sorted(out)


def payload(body: Any, encoding: str | None = None) -> Payload:
    """A message as kombu's virtual transports store it."""
    properties: dict[str, Any] = {"delivery_info": {"exchange": "logs", "routing_key": ""}}
    if encoding is not None:
        properties["body_encoding"] = encoding
    return {"body": body, "headers": {}, "properties": properties}


class TestBodySize:
    """``body_size``: the bytes of the body as published."""

    @given(raw=st.binary(max_size=300))
    def test_base64_body_as_kombu_sends_it(self, raw: bytes) -> None:
        """A base64 body counts as the bytes it encodes, whatever the padding."""
        assert body_size(payload(base64.b64encode(raw).decode(), "base64")) == len(raw)

    def test_str_body_counts_utf8_bytes(self) -> None:
        """A text body counts its UTF-8 bytes, not its characters."""
        assert body_size(payload("héllo")) == 6

    def test_bytes_body(self) -> None:
        """A bytes body counts its length."""
        assert body_size(payload(b"\x00\xff" * 5)) == 10

    def test_other_body_counts_its_json(self) -> None:
        """Any other body counts the JSON text it is stored as."""
        body = {"a": [1, 2]}
        assert body_size(payload(body)) == len(json.dumps(body).encode())


class TestSizeOf:
    """``size_of``: the body size from a message file's name, or its file size."""

    def test_from_the_name(self, tmp_path: Path) -> None:
        """A stem ``<stamp>-<bytes>`` says the size; the file itself is not read."""
        name = "00000000001700000000-00001234-000000000007-4242.msg"
        assert size_of(tmp_path, name) == 4242
        assert size_of(tmp_path, redelivered_name(name)) == 4242

    def test_from_the_file(self, tmp_path: Path) -> None:
        """A name without the size: the file's size."""
        name = "00000000001700000000-00001234-000000000007.msg"
        (tmp_path / name).write_bytes(b"x" * 37)
        assert size_of(tmp_path, name) == 37

    def test_missing_file(self, tmp_path: Path) -> None:
        """A name without the size whose file is gone counts as 0."""
        assert size_of(tmp_path, "00000000001700000000-00001234-000000000007.msg") == 0


class TestRedeliveredName:
    """``redelivered_name``: the name of a message put back in its queue."""

    def test_marks_the_stem(self) -> None:
        """The stem is kept (so the order is kept) with ``.redelivered.msg``."""
        assert redelivered_name("0001-0002-0003-10.msg") == "0001-0002-0003-10.redelivered.msg"

    def test_idempotent(self) -> None:
        """A redelivered name stays as it is."""
        name = "0001-0002-0003-10.redelivered.msg"
        assert redelivered_name(name) == name


class TestWriteFile:
    """``write_file``: the whole data under the final name, never a half file."""

    @pytest.mark.parametrize("fsync", [False, True])
    def test_whole_file_under_the_final_name(self, tmp_path: Path, fsync: bool) -> None:
        """The data is at the final name and no ``.tmp`` is left behind."""
        data = os.urandom(100_000)
        write_file(tmp_path, "x.tmp", "x.msg", data, fsync)
        assert (tmp_path / "x.msg").read_bytes() == data
        assert sorted(os.listdir(tmp_path)) == ["x.msg"]

    def test_creates_a_missing_folder(self, tmp_path: Path) -> None:
        """A queue folder that does not exist (deleted, never declared) is created."""
        folder = tmp_path / "queues" / "logfan.all"
        write_file(folder, "m.tmp", "m.msg", b"line", False)
        assert (folder / "m.msg").read_bytes() == b"line"
        assert os.listdir(folder) == ["m.msg"]


def death_payload() -> Payload:
    """A message published to ``logs`` with routing key ``rk``."""
    return {
        "body": "eA==",
        "headers": None,
        "properties": {"delivery_info": {"exchange": "logs", "routing_key": "rk"}},
    }


class TestAddDeath:
    """``add_death``: the x-death header as RabbitMQ writes it."""

    def test_first_death(self) -> None:
        """One entry saying queue, reason, exchange, routing keys; first and last death set."""
        message = death_payload()
        add_death(message, "logfan.all", "maxlen")
        headers = message["headers"]
        (entry,) = headers["x-death"]
        assert isinstance(entry.pop("time"), int)
        assert entry == {
            "count": 1,
            "reason": "maxlen",
            "queue": "logfan.all",
            "exchange": "logs",
            "routing-keys": ["rk"],
        }
        for key, value in (("exchange", "logs"), ("queue", "logfan.all"), ("reason", "maxlen")):
            assert headers[f"x-first-death-{key}"] == value
            assert headers[f"x-last-death-{key}"] == value

    def test_same_queue_and_reason_counts_and_moves_to_the_front(self) -> None:
        """Again from the same queue for the same reason: its count goes up, it comes first."""
        message = death_payload()
        add_death(message, "q1", "maxlen")
        add_death(message, "q2", "rejected")
        assert [(d["queue"], d["count"]) for d in message["headers"]["x-death"]] == [
            ("q2", 1),
            ("q1", 1),
        ]
        add_death(message, "q1", "maxlen")
        assert [(d["queue"], d["reason"], d["count"]) for d in message["headers"]["x-death"]] == [
            ("q1", "maxlen", 2),
            ("q2", "rejected", 1),
        ]

    def test_same_queue_other_reason_is_a_new_entry(self) -> None:
        """Queue and reason together identify an entry."""
        message = death_payload()
        add_death(message, "q1", "maxlen")
        add_death(message, "q1", "expired")
        assert [(d["reason"], d["count"]) for d in message["headers"]["x-death"]] == [
            ("expired", 1),
            ("maxlen", 1),
        ]

    def test_first_death_set_once_last_death_each_time(self) -> None:
        """x-first-death-* keep the first; x-last-death-* follow the latest."""
        message = death_payload()
        add_death(message, "q1", "maxlen")
        add_death(message, "q2", "rejected")
        headers = message["headers"]
        assert (headers["x-first-death-queue"], headers["x-first-death-reason"]) == (
            "q1",
            "maxlen",
        )
        assert (headers["x-last-death-queue"], headers["x-last-death-reason"]) == (
            "q2",
            "rejected",
        )

    def test_other_headers_kept(self) -> None:
        """Headers the message already had stay."""
        message = death_payload()
        message["headers"] = {"x-logfan-sink": "all"}
        add_death(message, "q1", "maxlen")
        assert message["headers"]["x-logfan-sink"] == "all"


class TestReturnClaims:
    """``return_claims``: a dead owner's claimed messages go back to their queues."""

    def test_claims_return_as_redelivered(self, tmp_path: Path) -> None:
        """Each claimed file is back in its queue under ``.redelivered.msg``; owner removed."""
        owner, queues = tmp_path / "inflight" / "owner1", tmp_path / "queues"
        (owner / "logfan.a").mkdir(parents=True)
        (owner / "logfan.b").mkdir()
        (queues / "logfan.a").mkdir(parents=True)
        (owner / LOCK).write_bytes(b"")
        (owner / "logfan.a" / "s1-5.msg").write_bytes(b"one")
        (owner / "logfan.a" / "s2-5.redelivered.msg").write_bytes(b"two")
        (owner / "logfan.b" / "s3-5.msg").write_bytes(b"three")

        return_claims(owner, queues)

        assert not owner.exists()
        assert sorted(os.listdir(queues / "logfan.a")) == [
            "s1-5.redelivered.msg",
            "s2-5.redelivered.msg",
        ]
        assert (queues / "logfan.a" / "s1-5.redelivered.msg").read_bytes() == b"one"
        assert (queues / "logfan.a" / "s2-5.redelivered.msg").read_bytes() == b"two"
        assert os.listdir(queues / "logfan.b") == ["s3-5.redelivered.msg"], "folder created"
        assert (queues / "logfan.b" / "s3-5.redelivered.msg").read_bytes() == b"three"

    def test_empty_owner(self, tmp_path: Path) -> None:
        """An owner that claimed nothing is just removed."""
        owner = tmp_path / "inflight" / "owner2"
        owner.mkdir(parents=True)
        (owner / LOCK).write_bytes(b"")
        return_claims(owner, tmp_path / "queues")
        assert not owner.exists()


class TestMessageFiles:
    """A message file holds the body as published, and says when it was cut short."""

    @given(
        body=st.one_of(st.binary(max_size=300), st.text(max_size=100), st.none()),
        headers=st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)),
    )
    def test_round_trip(self, body: Any, headers: dict[str, Any]) -> None:
        """Bytes, text (a lone surrogate too) or no body: read back as written."""
        written = payload(body)
        written["headers"] = headers
        data = encode_payload(written)
        assert decode_payload(data) == written
        if body:  # the body as it is, not in base64
            raw = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
            assert data.endswith(raw)
            with pytest.raises(ValueError, match="torn"):
                decode_payload(data[:-1])
