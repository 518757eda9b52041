"""The embedded broker's files: names that sort, whole writes, dead-letter headers, claims."""

# kombu ships py.typed but leaves most functions unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from contextlib import suppress
from pathlib import Path
from typing import Any

from kombu.utils.json import dumps, loads

from logfan.sinks.disk import fsync_dir

log = logging.getLogger(__name__)

Payload = dict[str, Any]

READY = ".msg"
REDELIVERED = ".redelivered.msg"
TMP = ".tmp"
LOCK = "owner.lock"
#: a ``.tmp`` this old belongs to a publisher that died between writing and renaming it
STALE_TMP_SECONDS = 60.0


class Stamps:
    """File stems unique across processes that sort in publish order within one process."""

    def __init__(self) -> None:
        self._lock, self._last, self._seq = threading.Lock(), 0, itertools.count()

    def next(self) -> str:
        with self._lock:
            # forced upward: a wall clock stepping back must not reorder this process's messages
            self._last = max(time.time_ns(), self._last + 1)
            return f"{self._last:020d}-{os.getpid():08d}-{next(self._seq):012d}"


STAMPS = Stamps()


def redelivered_name(name: str) -> str:
    return name.partition(".")[0] + REDELIVERED


#: the first line of a message file; a file without it is one JSON object, its body in base64
#: (what logfan wrote before, and still reads)
MAGIC = b"logfan-spool 1\n"
#: the header key giving the body's type ("bytes" or "str") and its length in bytes
_BODY_KEY = "logfan-body"


def encode_payload(payload: Payload) -> bytes:
    """A message file's bytes: MAGIC, the payload but its body as one line of JSON, then the
    body as published. No base64 on the way in or out, and a torn body shows (its length is in
    the header)."""
    body = payload.get("body")
    if isinstance(body, bytes | bytearray):
        raw, kind = bytes(body), "bytes"
    elif isinstance(body, str):
        raw, kind = body.encode("utf-8", "surrogatepass"), "str"
    else:
        return str(dumps(payload)).encode()
    header = {key: value for key, value in payload.items() if key != "body"}
    header[_BODY_KEY] = [kind, len(raw)]
    return MAGIC + str(dumps(header)).encode() + b"\n" + raw


def decode_payload(data: bytes) -> Payload:
    """The payload of a message file in either form; ValueError (or KeyError, TypeError) for
    anything else, a torn file included."""
    if not data.startswith(MAGIC):
        payload = loads(data)
        if not isinstance(payload, dict):
            raise TypeError("not a message")
        return payload
    header, newline, raw = data[len(MAGIC) :].partition(b"\n")
    payload = loads(header)
    kind, length = payload.pop(_BODY_KEY)
    if not newline or len(raw) != length or kind not in ("bytes", "str"):
        raise ValueError("a torn or foreign message file")
    payload["body"] = raw if kind == "bytes" else raw.decode("utf-8", "surrogatepass")
    return dict(payload)


def body_size(payload: Payload) -> int:
    """The bytes of the body as published (what RabbitMQ's x-max-length-bytes counts)."""
    body = payload.get("body")
    encoding = payload.get("properties", {}).get("body_encoding")
    if isinstance(body, str) and encoding == "base64":  # kombu's default for virtual transports
        return len(body) * 3 // 4 - (len(body) - len(body.rstrip("=")))
    if isinstance(body, str):
        return len(body.encode("utf-8", "surrogatepass"))
    if isinstance(body, bytes | bytearray):
        return len(body)
    return len(dumps(body).encode())


def size_of(folder: Path, name: str) -> int:
    """The body size a message file's name records; its file size if the name does not say."""
    parts = name.partition(".")[0].split("-")
    if len(parts) == 4 and parts[3].isdigit():
        return int(parts[3])
    try:
        return (folder / name).stat().st_size
    except FileNotFoundError:
        return 0


def listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


def scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except FileNotFoundError:
        return []


def subdirs(folder: Path) -> list[Path]:
    return [Path(e.path) for e in scan(folder) if e.is_dir()]


def write_file(folder: Path, tmp_name: str, name: str, data: bytes, fsync: bool) -> None:
    """Write ``data`` to ``folder/tmp_name``, then rename it to ``folder/name``."""
    tmp = folder / tmp_name
    try:
        f = tmp.open("xb")
    except FileNotFoundError:  # queue folder deleted or never declared: keep the message
        folder.mkdir(parents=True, exist_ok=True)
        f = tmp.open("xb")
    with f:
        f.write(data)
        if fsync:
            f.flush()
            os.fsync(f.fileno())
    os.rename(tmp, folder / name)
    if fsync:
        fsync_dir(folder)


def add_death(payload: Payload, queue: str, reason: str) -> None:
    """Record in the headers, as RabbitMQ does, that ``queue`` dead-lettered the message."""
    headers = payload.get("headers")
    if not isinstance(headers, dict):
        headers = payload["headers"] = {}
    info = payload["properties"]["delivery_info"]
    exchange, routing_key = str(info.get("exchange") or ""), str(info.get("routing_key") or "")
    deaths = [d for d in headers.get("x-death") or [] if isinstance(d, dict)]
    old = next((d for d in deaths if d.get("queue") == queue and d.get("reason") == reason), None)
    entry: dict[str, Any] = {
        "count": 1,
        "reason": reason,
        "queue": queue,
        "exchange": exchange,
        "routing-keys": [routing_key],
    }
    if old is not None:  # dead-lettered from this queue for this reason before: count, to front
        entry = {**old, "count": int(old.get("count") or 0) + 1}
    entry["time"] = int(time.time())
    headers["x-death"] = [entry, *(d for d in deaths if d is not old)]
    for key, value in (("exchange", exchange), ("queue", queue), ("reason", reason)):
        headers.setdefault(f"x-first-death-{key}", value)
        headers[f"x-last-death-{key}"] = value


def return_claims(owner: Path, queues: Path) -> None:
    """Move every message claimed under ``owner`` back to its queue, then remove ``owner``."""
    for claimed in subdirs(owner):
        target = queues / claimed.name
        entries = scan(claimed)
        if entries:  # a queue deleted since (an exclusive one) is not made again for nothing
            target.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            # another recoverer may race us for the same folder: a rename moves a file only once
            with suppress(FileNotFoundError):
                os.rename(entry.path, target / redelivered_name(entry.name))
        with suppress(OSError):
            claimed.rmdir()
    with suppress(FileNotFoundError):
        (owner / LOCK).unlink()
    with suppress(OSError):
        owner.rmdir()
