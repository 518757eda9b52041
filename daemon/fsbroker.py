"""logfan's embedded broker: kombu's filesystem transport made crash-safe and fast on backlogs.

Layout under the ``root`` transport option (created as needed)::

    root/control/<exchange>.exchange    bindings in kombu's format, guarded by flock
    root/queues/<queue>/<stamp>.msg     ready messages; stamps (ns, pid, counter) sort by publish
    root/inflight/<owner>/<queue>/      claimed, unsettled messages of one live connection

A publish writes ``<stamp>.tmp`` then renames it to ``<stamp>.msg``: no reader sees half a message.
A get lists its queue's folder once, keeps the sorted names, and claims the next by renaming it
into its connection's in-flight folder, whose ``owner.lock`` stays flocked while it lives. Ack
deletes the claimed file; requeue, reject(requeue=True) and channel close rename it back under its
stamp as ``.redelivered.msg``. A transport opening its first channel returns the claims of every
owner whose lock is free (the process died, even by SIGKILL) to their queues: at-least-once.

Transport options: ``root`` (required); ``polling_interval`` (seconds between empty polls, default
0.05); ``fsync`` (default False): when true a publish fsyncs the message file and its folder
before returning, so a published message survives power loss, at some milliseconds per message.
Without it a crashed process loses nothing; a power loss may lose recent messages.
"""

# kombu ships py.typed but leaves most functions unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

__all__ = ["Channel", "Message", "QoS", "Transport"]

log = logging.getLogger(__name__)

Payload = dict[str, Any]

_READY = ".msg"
_REDELIVERED = ".redelivered.msg"
_TMP = ".tmp"
_LOCK = "owner.lock"
#: a ``.tmp`` this old belongs to a publisher that died between writing and renaming it
_STALE_TMP_SECONDS = 60.0


class _Stamps:
    """File stems unique across processes that sort in publish order within one process."""

    def __init__(self) -> None:
        self._lock, self._last, self._seq = threading.Lock(), 0, itertools.count()

    def next(self) -> str:
        with self._lock:
            # forced upward: a wall clock stepping back must not reorder this process's messages
            self._last = max(time.time_ns(), self._last + 1)
            return f"{self._last:020d}-{os.getpid():08d}-{next(self._seq):012d}"


_STAMPS = _Stamps()


def _redelivered(name: str) -> str:
    return name.partition(".")[0] + _REDELIVERED


def _scan(folder: Path) -> list[os.DirEntry[str]]:
    try:
        return list(os.scandir(folder))
    except FileNotFoundError:
        return []


def _subdirs(folder: Path) -> list[Path]:
    return [Path(e.path) for e in _scan(folder) if e.is_dir()]


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _return_claims(owner: Path, queues: Path) -> None:
    """Move every message claimed under ``owner`` back to its queue, then remove ``owner``."""
    for claimed in _subdirs(owner):
        target = queues / claimed.name
        target.mkdir(parents=True, exist_ok=True)
        for entry in _scan(claimed):
            # another recoverer may race us for the same folder: a rename moves a file only once
            with suppress(FileNotFoundError):
                os.rename(entry.path, target / _redelivered(entry.name))
        with suppress(OSError):
            claimed.rmdir()
    with suppress(FileNotFoundError):
        (owner / _LOCK).unlink()
    with suppress(OSError):
        owner.rmdir()


class Message(virtual.Message):
    """A received message that says whether it was delivered before."""

    @property
    def redelivered(self) -> bool:
        """True when the message was requeued or recovered from a consumer that died."""
        return bool(self.delivery_info.get("redelivered"))


class QoS(virtual.QoS):
    """kombu's prefetch bookkeeping, with ack and reject settling the claimed file."""

    def ack(self, delivery_tag: str) -> None:
        self._settle(delivery_tag)
        super().ack(delivery_tag)

    def reject(self, delivery_tag: str, requeue: bool = False) -> None:
        if not requeue:
            self._settle(delivery_tag)
        super().reject(delivery_tag, requeue=requeue)  # requeue goes through Channel._restore

    def _settle(self, delivery_tag: str) -> None:
        transport: Transport | None = self.channel.connection
        if transport is not None:
            transport.settle(delivery_tag)


class Channel(filesystem.Channel):
    """A channel whose queues are folders and whose gets claim files by renaming them."""

    Message = Message
    QoS = QoS
    connection: Transport

    def __init__(self, connection: Transport, **kwargs: Any) -> None:
        super().__init__(connection, **kwargs)
        self._pending: dict[str, list[str]] = {}  # names still to try per queue, oldest last

    @property
    def control_folder(self) -> Path:
        return self.connection.root / "control"

    def _folder(self, queue: str) -> Path:
        if not queue or not self._is_valid_exchange_name(queue):
            raise ChannelError(f"invalid queue name {queue!r}: use letters, digits, '.', '_', '-'")
        return self.connection.root / "queues" / queue

    def _names(self, queue: str) -> list[str]:
        try:
            return [n for n in os.listdir(self._folder(queue)) if n.endswith(_READY)]
        except FileNotFoundError:
            return []

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        self._folder(queue).mkdir(parents=True, exist_ok=True)

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return self._folder(queue).is_dir()

    def _size(self, queue: str) -> int:
        return len(self._names(queue))

    def _purge(self, queue: str) -> int:
        self._pending.pop(queue, None)
        folder, count = self._folder(queue), 0
        for name in self._names(queue):
            with suppress(FileNotFoundError):
                os.unlink(folder / name)
                count += 1
        return count

    def _queue_bind(self, exchange: str, *meta: Any) -> None:
        # kombu makes a missing exchange file by truncating it before it locks it, so a concurrent
        # bind or publish could read it empty (losing a binding, or crashing on the JSON): the file
        # is made whole first, so kombu always takes its locked read-modify-write path
        file = self._exchange_file(exchange)
        if not file.exists():
            tmp = file.with_name(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(b"[]")
            with suppress(FileExistsError):
                os.link(tmp, file)
            tmp.unlink()
        super()._queue_bind(exchange, *meta)

    # kombu's AbstractChannel names the payload `message`, its filesystem Channel `payload`: no
    # signature satisfies both, so mypy is told to accept the filesystem one
    def _put(self, queue: str, payload: Payload, **kwargs: Any) -> None:  # type: ignore[override]
        self._write(self._folder(queue), dumps(payload).encode())

    def _put_fanout(self, exchange: str, payload: Payload, routing_key: str, **kw: Any) -> None:
        data = dumps(payload).encode()
        for queue in dict.fromkeys(row.queue for row in self.get_table(exchange)):
            self._write(self._folder(queue), data)

    def _write(self, folder: Path, data: bytes) -> None:
        stem = _STAMPS.next()
        tmp, fsync = folder / (stem + _TMP), self.connection.fsync
        try:
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
            os.rename(tmp, folder / (stem + _READY))
            if fsync:
                _fsync_dir(folder)
        except OSError as exc:
            raise ChannelError(f"cannot publish to {folder}: {exc}") from exc

    def _get(self, queue: str, timeout: float | None = None) -> Payload:
        pending = self._pending.get(queue)
        if not pending:
            pending = sorted(self._names(queue), reverse=True)
            self._pending[queue] = pending
        while pending:
            try:
                path = self.connection.claim(queue, pending.pop())
            except FileNotFoundError:
                continue  # another consumer claimed it after we listed the folder
            payload = self._open(queue, path)
            if payload is not None:
                return payload
        raise Empty

    def _open(self, queue: str, path: Path) -> Payload | None:
        try:
            payload: Payload = loads(path.read_bytes())
            props = payload["properties"]
        except (ValueError, KeyError, TypeError):
            # not a message we wrote; parked so it cannot stall the queue by crashing each consumer
            parked = self.connection.root / "corrupt" / queue
            parked.mkdir(parents=True, exist_ok=True)
            os.rename(path, parked / path.name)
            log.exception("moved undecodable message %s of %s to %s", path.name, queue, parked)
            return None
        # a fanout publish gives every copy one tag; a claim needs its own
        tag = props["delivery_tag"] = uuid.uuid4().hex
        if path.name.endswith(_REDELIVERED):
            payload["redelivered"] = True
            props.setdefault("delivery_info", {})["redelivered"] = True
        self.connection.claims[tag] = (path, queue)
        return payload

    def _restore(self, message: Any) -> None:
        # kombu's restore publishes a copy; moving the claimed file back keeps one, in its place
        if self.connection is None:
            return  # closed: the transport returns what is left when it closes or dies
        returned = self.connection.unclaim(message.delivery_tag)
        if returned is not None:
            queue, name = returned
            self._pending.setdefault(queue, []).append(name)

    def basic_consume(
        self, queue: str, no_ack: bool, callback: Callable[[Any], Any], *args: Any, **kw: Any
    ) -> Any:
        def settle_first(message: Any) -> Any:
            self.connection.settle(message.delivery_tag)  # no ack will ever come
            return callback(message)

        return super().basic_consume(
            queue, no_ack, settle_first if no_ack else callback, *args, **kw
        )

    def basic_get(self, queue: str, no_ack: bool = False, **kwargs: Any) -> Any:
        message = super().basic_get(queue, no_ack, **kwargs)
        if message is not None and no_ack:
            self.connection.settle(message.delivery_tag)
        return message


class Transport(filesystem.Transport):
    """The filesystem transport, rooted in ``transport_options['root']``."""

    Channel = Channel
    polling_interval = 0.05

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        # the stock transport shares one class-level BrokerState among all its instances, so a
        # binding made under one root was taken as already made under any other root
        self.state = virtual.BrokerState()
        options = client.transport_options
        if not options.get("root"):
            raise ValueError("logfan broker: transport option 'root' (a folder path) is required")
        self.root = Path(options["root"])
        self.fsync = bool(options.get("fsync", False))
        self.owner = self.root / "inflight" / f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        self.claims: dict[str, tuple[Path, str]] = {}  # delivery tag -> (claimed file, queue)
        self._owner_lock: int | None = None
        self._claim_dirs: set[str] = set()

    def create_channel(self, connection: Any) -> Any:
        if self._owner_lock is None:
            self._start()
        return super().create_channel(connection)

    def close_connection(self, connection: Any) -> None:
        super().close_connection(connection)  # closing channels returns their unacked messages
        if self._owner_lock is not None:
            _return_claims(self.owner, self.root / "queues")  # claims no channel held any more
            os.close(self._owner_lock)
            self._owner_lock = None
            self.claims.clear()
            self._claim_dirs.clear()

    def claim(self, queue: str, name: str) -> Path:
        """Move ``name`` from ``queue`` into this owner's folder; FileNotFoundError if gone."""
        folder = self.owner / queue
        if queue not in self._claim_dirs:
            folder.mkdir(parents=True, exist_ok=True)
            self._claim_dirs.add(queue)
        os.rename(self.root / "queues" / queue / name, folder / name)
        return folder / name

    def settle(self, delivery_tag: str) -> None:
        """Delete the claimed file: the message is done with (acked or dropped)."""
        claimed = self.claims.pop(delivery_tag, None)
        if claimed is not None:
            claimed[0].unlink(missing_ok=True)

    def unclaim(self, delivery_tag: str) -> tuple[str, str] | None:
        """Move the claimed file back to its queue; return (queue, new name), None if not ours."""
        claimed = self.claims.pop(delivery_tag, None)
        if claimed is None:
            return None
        path, queue = claimed
        folder, name = self.root / "queues" / queue, _redelivered(path.name)
        folder.mkdir(parents=True, exist_ok=True)
        os.rename(path, folder / name)
        return queue, name

    def _start(self) -> None:
        for sub in ("control", "queues", "inflight"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._recover()
        self._remove_stale_tmp()
        staging = self.owner.with_name("." + self.owner.name)
        staging.mkdir()
        fd = os.open(staging / _LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # the folder gets its public name only once locked, so recovery never takes a live one
        staging.rename(self.owner)
        self._owner_lock = fd

    def _recover(self) -> None:
        for owner in _subdirs(self.root / "inflight"):
            if owner.name.startswith("."):
                continue  # an owner still being set up
            try:
                fd: int | None = os.open(owner / _LOCK, os.O_RDWR)
            except FileNotFoundError:
                fd = None  # a recoverer died after removing the lock: nobody owns the folder
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue  # its owner is alive
            try:
                _return_claims(owner, self.root / "queues")
            finally:
                if fd is not None:
                    os.close(fd)

    def _remove_stale_tmp(self) -> None:
        cutoff = time.time() - _STALE_TMP_SECONDS
        for folder in _subdirs(self.root / "queues"):
            for entry in _scan(folder):
                with suppress(FileNotFoundError):
                    if entry.name.endswith(_TMP) and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
