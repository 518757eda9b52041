"""The embedded broker's kombu transport: channels whose queues are folders, gets that claim."""

# kombu ships py.typed but leaves most functions unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.transport.base import to_rabbitmq_queue_arguments
from kombu.utils.json import loads

from logfan.daemon.broker.spool.bounds import Bounds, Limits
from logfan.daemon.broker.spool.exclusive import Exclusive, remove_bindings
from logfan.daemon.broker.spool.files import (
    LOCK,
    READY,
    REDELIVERED,
    STALE_TMP_SECONDS,
    STAMPS,
    TMP,
    Payload,
    body_size,
    decode_payload,
    encode_payload,
    listdir,
    log,
    redelivered_name,
    return_claims,
    scan,
    subdirs,
    write_file,
)

__all__ = ["Bounds", "Channel", "Exclusive", "Limits", "Message", "QoS", "Transport"]


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
    #: bodies are kept as published (see files.encode_payload), not in kombu's base64
    body_encoding = None  # type: ignore[assignment]

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
        return [n for n in listdir(self._folder(queue)) if n.endswith(READY)]

    def prepare_queue_arguments(self, arguments: Mapping[str, Any], **kwargs: Any) -> Any:
        # kombu's virtual channels drop Queue(max_length=..., max_length_bytes=...); AMQP's turn
        # them into x-arguments, and so does this one
        return to_rabbitmq_queue_arguments(arguments, **kwargs)

    def queue_declare(self, queue: str | None = None, passive: bool = False, **kwargs: Any) -> Any:
        """Declare ``queue``; an ``exclusive`` one is recorded as this connection's first, so it
        is deleted when the connection closes or dies (see ``exclusive``)."""
        if kwargs.get("exclusive") and not passive:
            queue = queue or f"amq.gen-{uuid.uuid4()}"
            self._folder(queue)  # a bad name is refused before anything is written
            self.connection.exclusive.declare(queue)
        return super().queue_declare(queue, passive, **kwargs)

    def queue_delete(
        self, queue: str, if_unused: bool = False, if_empty: bool = False, **kwargs: Any
    ) -> None:
        """Delete ``queue`` for every process: its bindings in every exchange file, its messages,
        its folder and its arguments (kombu's own only purges it and forgets this process's
        bindings). ``if_unused`` is ignored: consumers in other processes are not known."""
        self._folder(queue)
        if if_empty and self._size(queue):
            return
        self.state.queue_bindings_delete(queue)
        self._pending.pop(queue, None)
        self.connection.bounds.forget(queue)
        self.connection.exclusive.delete(queue)

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        folder = self._folder(queue)
        if "arguments" in kwargs:  # a declaration (kombu's undeliverable fallback passes none)
            self.connection.bounds.declare(queue, kwargs["arguments"] or {})
        folder.mkdir(parents=True, exist_ok=True)

    def _has_queue(self, queue: str, **kwargs: Any) -> bool:
        return self._folder(queue).is_dir()

    def _size(self, queue: str) -> int:
        return len(self._names(queue))

    def _purge(self, queue: str) -> int:
        self._pending.pop(queue, None)
        self.connection.bounds.forget(queue)
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

    def queue_unbind(
        self,
        queue: str,
        exchange: str | None = None,
        routing_key: str = "",
        arguments: Any = None,
        **kwargs: Any,
    ) -> None:
        """Remove ``queue``'s bindings to ``exchange`` from the shared table (kombu's in-memory
        unbind never reaches the file, so other processes would keep publishing to the queue)."""
        self.state.binding_delete(queue, exchange, routing_key)
        self._exchange_file(exchange or "")  # refuses a name that is not a file in control/
        remove_bindings(self.control_folder, queue, exchange or "")

    # kombu's AbstractChannel names the payload `message`, its filesystem Channel `payload`: no
    # signature satisfies both, so mypy is told to accept the filesystem one
    def _put(self, queue: str, payload: Payload, **kwargs: Any) -> None:  # type: ignore[override]
        self._deliver_to(queue, encode_payload(payload), body_size(payload))

    def _put_fanout(self, exchange: str, payload: Payload, routing_key: str, **kw: Any) -> None:
        """Write a copy into every bound queue, holding the exchange file's lock shared while
        delivering: an unbind (which locks it exclusively) waits until no publish that read the
        old bindings is still writing, so a deleted queue's folder is never made again."""
        data, size = encode_payload(payload), body_size(payload)
        file = self._exchange_file(exchange)
        try:
            f = file.open("rb")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ChannelError(f"Cannot open {file}") from exc
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)
            rows = [filesystem.exchange_queue_t(*row) for row in loads(f.read().decode())]
            for queue in dict.fromkeys(row.queue for row in rows):
                self._deliver_to(queue, data, size)

    def _deliver_to(self, queue: str, data: bytes, size: int) -> None:
        folder = self._folder(queue)
        stem = f"{STAMPS.next()}-{size}"  # the body size in the name: bounds never read files
        try:
            write_file(folder, stem + TMP, stem + READY, data, self.connection.fsync)
        except OSError as exc:
            raise ChannelError(f"cannot publish to {folder}: {exc}") from exc
        self.connection.bounds.published(queue, size)

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
            payload = decode_payload(path.read_bytes())
            props = payload["properties"]
        except (ValueError, KeyError, TypeError):
            # not a message we wrote; parked so it cannot stall the queue by crashing each consumer
            self.connection.park(queue, path)
            return None
        # a fanout publish gives every copy one tag; a claim needs its own
        tag = props["delivery_tag"] = uuid.uuid4().hex
        if path.name.endswith(REDELIVERED):
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
        self.bounds = Bounds(self)
        self.exclusive = Exclusive(self)

    def create_channel(self, connection: Any) -> Any:
        if self._owner_lock is None:
            self._start()
        return super().create_channel(connection)

    def close_connection(self, connection: Any) -> None:
        if self._owner_lock is not None:
            self.bounds.finish()  # while this owner can still claim what it drops
        super().close_connection(connection)  # closing channels returns their unacked messages
        if self._owner_lock is not None:
            return_claims(self.owner, self.root / "queues")  # claims no channel held any more
            self.exclusive.finish()  # while this owner lives: no sweep deletes them meanwhile
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

    def park(self, queue: str, path: Path) -> None:
        """Move the undecodable claimed file ``path`` to root/corrupt/<queue>."""
        parked = self.root / "corrupt" / queue
        parked.mkdir(parents=True, exist_ok=True)
        os.rename(path, parked / path.name)
        log.error("moved undecodable message %s of %s to %s", path.name, queue, parked)

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
        folder, name = self.root / "queues" / queue, redelivered_name(path.name)
        folder.mkdir(parents=True, exist_ok=True)
        os.rename(path, folder / name)
        return queue, name

    def _start(self) -> None:
        for sub in ("control", "queues", "inflight"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._recover()
        self.exclusive.sweep()  # after the recovery: the claims it returned go with the queues
        self._remove_stale_tmp()
        staging = self.owner.with_name("." + self.owner.name)
        staging.mkdir()
        fd = os.open(staging / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        # the folder gets its public name only once locked, so recovery never takes a live one
        staging.rename(self.owner)
        self._owner_lock = fd

    def _recover(self) -> None:
        for owner in subdirs(self.root / "inflight"):
            if owner.name.startswith("."):
                continue  # an owner still being set up
            try:
                fd: int | None = os.open(owner / LOCK, os.O_RDWR)
            except FileNotFoundError:
                fd = None  # a recoverer died after removing the lock: nobody owns the folder
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue  # its owner is alive
            try:
                return_claims(owner, self.root / "queues")
            finally:
                if fd is not None:
                    os.close(fd)

    def _remove_stale_tmp(self) -> None:
        cutoff = time.time() - STALE_TMP_SECONDS
        for folder in subdirs(self.root / "queues"):
            for entry in scan(folder):
                with suppress(FileNotFoundError):
                    if entry.name.endswith(TMP) and entry.stat().st_mtime < cutoff:
                        os.unlink(entry.path)
