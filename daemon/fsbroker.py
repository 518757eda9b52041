"""logfan's embedded broker: kombu's filesystem transport made crash-safe and fast on backlogs.

Layout under the ``root`` transport option (created as needed)::

    root/control/<exchange>.exchange    bindings in kombu's format, guarded by flock
    root/control/queues/<queue>.json    the arguments a queue was last declared with (its bounds)
    root/queues/<queue>/<stem>.msg      ready messages; the stem is <stamp>-<body bytes>, and stamps
                                        (ns, pid, counter) sort by publish
    root/inflight/<owner>/<queue>/      claimed, unsettled messages of one live connection

A publish writes ``<stem>.tmp`` then renames it to ``<stem>.msg``: no reader sees half a message.
A get lists its queue's folder once, keeps the sorted names, and claims the next by renaming it
into its connection's in-flight folder, whose ``owner.lock`` stays flocked while it lives. Ack
deletes the claimed file; requeue, reject(requeue=True) and channel close rename it back under its
stem as ``.redelivered.msg``. A transport opening its first channel returns the claims of every
owner whose lock is free (the process died, even by SIGKILL) to their queues: at-least-once.

Bounded queues, as on RabbitMQ: a queue declared with ``x-max-length`` (messages) and/or
``x-max-length-bytes`` (the total of the message bodies as published, without properties or
headers) keeps only its newest messages. After a publish makes it exceed a bound, the oldest
messages (in name order) are dead-lettered: with ``x-dead-letter-exchange: ""`` they move to the
queue named by ``x-dead-letter-routing-key`` (else by the message's own routing key) with an
``x-death`` header whose first entry says ``reason: maxlen``; without a dead-letter exchange they
are deleted. Only ``x-overflow: drop-head`` (the default) and the default exchange as dead-letter
exchange are supported; other values are refused when the queue is declared. Other arguments are
stored and ignored. Like RabbitMQ, only ready messages count: claimed (unacknowledged) ones do
not. Unlike RabbitMQ, declaring a queue again with other arguments is not an error: the last
declaration wins (an empty one removes the bounds), so a changed config never bricks a queue.
Rejected messages are not dead-lettered (logfan's consumer dead-letters lines itself).

Every publishing process enforces the bounds stored under ``control/queues``. A dead-lettered
message is first claimed like a get (so a consumer or another publisher can never take it too),
rewritten with its ``x-death`` header into the dead-letter folder (``.tmp`` then rename), and only
then deleted from the claim: a crash in between returns the claim to its queue, so a message may
be dead-lettered and also kept, never lost. The bound is exact when the publishing connections
are closed; while several processes publish at once a queue may briefly exceed it (see
``Bounds``). Dead-lettered messages do not trigger their dead-letter queue's own bounds, and a
message that would be dead-lettered into its own queue is deleted.

Transport options: ``root`` (required); ``polling_interval`` (seconds between empty polls, default
0.05); ``fsync`` (default False): when true a publish fsyncs the message file and its folder
before returning, so a published message survives power loss, at some milliseconds per message.
Without it a crashed process loses nothing; a power loss may lose recent messages.
"""

# kombu ships py.typed but leaves most functions unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import fcntl
import heapq
import itertools
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from queue import Empty
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem, virtual
from kombu.transport.base import to_rabbitmq_queue_arguments
from kombu.utils.json import dumps, loads

__all__ = ["Bounds", "Channel", "Limits", "Message", "QoS", "Transport"]

log = logging.getLogger(__name__)

Payload = dict[str, Any]

_READY = ".msg"
_REDELIVERED = ".redelivered.msg"
_TMP = ".tmp"
_LOCK = "owner.lock"
#: a ``.tmp`` this old belongs to a publisher that died between writing and renaming it
_STALE_TMP_SECONDS = 60.0
#: a publisher lists a bounded queue's folder again after publishing this fraction of what the
#: queue held after its last listing (see ``Bounds``)
_RELIST_FRACTION = 16


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


def _body_size(payload: Payload) -> int:
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


def _size_of(folder: Path, name: str) -> int:
    """The body size a message file's name records; its file size if the name does not say."""
    parts = name.partition(".")[0].split("-")
    if len(parts) == 4 and parts[3].isdigit():
        return int(parts[3])
    try:
        return (folder / name).stat().st_size
    except FileNotFoundError:
        return 0


def _listdir(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except FileNotFoundError:
        return []


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


def _write_file(folder: Path, tmp_name: str, name: str, data: bytes, fsync: bool) -> None:
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
        _fsync_dir(folder)


def _add_death(payload: Payload, queue: str, reason: str) -> None:
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


@dataclass(frozen=True)
class Limits:
    """A bounded queue's limits, from its declaration arguments, and where its drops go."""

    max_length: int | None = None
    max_bytes: int | None = None
    #: None: dropped messages are deleted; "": dead-lettered through the default exchange
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None

    @classmethod
    def parse(cls, queue: str, arguments: Mapping[str, Any]) -> Limits | None:
        """The bounds ``arguments`` set (None: unbounded); ChannelError if they are unsupported."""

        def refuse(key: str, why: str) -> ChannelError:
            return ChannelError(f"PRECONDITION_FAILED - queue {queue!r}: {key}: {why}")

        lengths: dict[str, int | None] = {}
        for key in ("x-max-length", "x-max-length-bytes"):
            value = arguments.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                raise refuse(key, f"expected a non-negative integer, got {value!r}")
            lengths[key] = value
        overflow = arguments.get("x-overflow", "drop-head")
        if overflow != "drop-head":
            raise refuse(
                "x-overflow", f"the embedded broker supports only drop-head, not {overflow!r}"
            )
        exchange = arguments.get("x-dead-letter-exchange")
        if exchange not in (None, ""):
            raise refuse(
                "x-dead-letter-exchange",
                f"the embedded broker dead-letters only through the default exchange '', "
                f"not {exchange!r}",
            )
        routing_key = arguments.get("x-dead-letter-routing-key")
        if routing_key is not None and exchange is None:
            raise refuse("x-dead-letter-routing-key", "needs x-dead-letter-exchange too")
        if routing_key is not None and (
            not isinstance(routing_key, str)
            or not routing_key
            or not Channel._is_valid_exchange_name(routing_key)
        ):
            raise refuse("x-dead-letter-routing-key", f"not a valid queue name: {routing_key!r}")
        if lengths["x-max-length"] is None and lengths["x-max-length-bytes"] is None:
            return None
        return cls(lengths["x-max-length"], lengths["x-max-length-bytes"], exchange, routing_key)

    def exceeded(self, count: int, size: int) -> bool:
        """True if ``count`` ready messages of ``size`` body bytes in all are over a bound."""
        return (self.max_length is not None and count > self.max_length) or (
            self.max_bytes is not None and size > self.max_bytes
        )

    def dead_letter_queue(self, queue: str, routing_key: str) -> str | None:
        """Where a message of ``queue`` published with ``routing_key`` goes; None: deleted.

        A message that would be dead-lettered into its own queue is deleted, as RabbitMQ does
        with a dead-letter cycle that no consumer takes part in.
        """
        if self.dead_letter_exchange is None:
            return None
        target = self.dead_letter_routing_key or routing_key
        valid = target and target != queue and Channel._is_valid_exchange_name(target)
        return target if valid else None


@dataclass
class _Tally:
    """One process's picture of a bounded queue: exact at its last listing, then estimated."""

    limits: Limits
    head: deque[tuple[str, int]]  # the oldest names then ready, with body sizes, oldest first
    count: int  # ready messages
    size: int  # their body bytes (0 when only the count is bounded)
    budget: int  # publishes left before the folder is listed again


class Bounds:
    """Keeps the bounded queues one connection publishes to within their limits (drop-head).

    Listing a folder costs about a microsecond per message: too much on every publish into a
    deep queue. So each bounded queue gets a tally, taken from a listing: the ready count, their
    bytes, and the oldest names (as many as the next publishes may need to drop). Each publish
    then adds itself to the tally without listing, and a drop takes the next name of the head.
    A name that vanished since (a consumer claimed it, another publisher dropped it) has left
    the queue either way, and is just not counted any more. The folder is listed again after
    this process published 1/16 of what the queue then held (on every publish while it holds
    under 16 messages, when listing is cheap): about 16 names listed per publish at any depth,
    and publishes in other processes are seen within that many publishes. So while P processes
    publish at once a queue can exceed its bound by about P/16 of it; closing the connection
    lists and trims each bounded queue it published to, so the bound is exact once they are
    done (the last of them to list sees every message the others wrote).
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self._tallies: dict[str, _Tally] = {}
        self._limits: dict[str, tuple[tuple[int, int, int], Limits | None]] = {}

    def _file(self, queue: str) -> Path:
        return self.transport.root / "control" / "queues" / f"{queue}.json"

    def declare(self, queue: str, arguments: Mapping[str, Any]) -> None:
        """Check ``arguments`` and store them for every process; the last declaration wins."""
        Limits.parse(queue, arguments)
        file = self._file(queue)
        try:
            data = json.dumps(dict(arguments), sort_keys=True).encode()
        except (TypeError, ValueError) as exc:
            raise ChannelError(f"queue {queue!r}: arguments must be JSON values: {exc}") from exc
        try:
            unchanged = file.read_bytes() == data
        except FileNotFoundError:
            unchanged = not arguments
        if unchanged:
            return
        if not arguments:
            file.unlink(missing_ok=True)
            return
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            _write_file(
                file.parent, f".{uuid.uuid4().hex}{_TMP}", file.name, data, self.transport.fsync
            )
        except OSError as exc:
            raise ChannelError(f"cannot store the arguments of queue {queue!r}: {exc}") from exc

    def limits(self, queue: str) -> Limits | None:
        """The bounds ``queue`` was last declared with, by any process (None: unbounded)."""
        file = self._file(queue)
        try:
            stat = file.stat()  # about a microsecond: a new declaration is seen at the next put
        except FileNotFoundError:
            self._limits.pop(queue, None)
            return None
        key = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        cached = self._limits.get(queue)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            arguments = json.loads(file.read_bytes())
            limits = Limits.parse(queue, arguments) if isinstance(arguments, dict) else None
        except FileNotFoundError:
            return None
        except (ValueError, ChannelError) as exc:
            log.warning("ignoring the unreadable arguments of queue %s in %s: %s", queue, file, exc)
            limits = None
        self._limits[queue] = (key, limits)
        return limits

    def published(self, queue: str, size: int) -> None:
        """Account for a message of ``size`` body bytes just written to ``queue``; trim it.

        Never raises: the message is safely written, so a failure to trim only delays the bound.
        """
        try:
            limits = self.limits(queue)
            if limits is None:
                self._tallies.pop(queue, None)
                return
            tally = self._tallies.get(queue)
            if tally is not None and tally.budget > 0 and tally.limits == limits:
                tally.count += 1
                tally.size += size
                tally.budget -= 1
                self._trim(queue, tally)
            else:
                self._trim(queue, self._list(queue, limits))  # the listing counts the new one
        except OSError as exc:
            log.warning("cannot keep queue %s within its bounds: %s", queue, exc)

    def forget(self, queue: str) -> None:
        """Drop the tally of ``queue`` (purged): the next publish lists it again."""
        self._tallies.pop(queue, None)

    def finish(self) -> None:
        """List and trim, exactly, every bounded queue this connection published to."""
        tallies, self._tallies = self._tallies, {}
        for queue in tallies:
            try:
                limits = self.limits(queue)
                if limits is not None:
                    self._trim(queue, self._list(queue, limits))
            except OSError as exc:
                log.warning("cannot keep queue %s within its bounds: %s", queue, exc)
        self._tallies.clear()

    def _list(self, queue: str, limits: Limits) -> _Tally:
        folder = self.transport.root / "queues" / queue
        names = [n for n in _listdir(folder) if n.endswith(_READY)]
        count = len(names)
        if limits.max_bytes is None:
            keep = min(count, limits.max_length if limits.max_length is not None else count)
            budget = max(1, keep // _RELIST_FRACTION)
            oldest = heapq.nsmallest(count - keep + budget, names)
            return _Tally(limits, deque((name, 0) for name in oldest), count, 0, budget)
        names.sort()
        sizes = [_size_of(folder, name) for name in names]
        total = left = sum(sizes)
        drop = 0
        while drop < count and limits.exceeded(count - drop, left):
            left -= sizes[drop]
            drop += 1
        budget = max(1, (count - drop) // _RELIST_FRACTION)
        head = deque(zip(names[: drop + budget], sizes[: drop + budget], strict=True))
        return _Tally(limits, head, count, total, budget)

    def _trim(self, queue: str, tally: _Tally) -> None:
        self._tallies[queue] = tally
        while tally.limits.exceeded(tally.count, tally.size):
            if not tally.head:  # dropped all it knew and still over: others published
                tally = self._tallies[queue] = self._list(queue, tally.limits)
                if not tally.head:
                    return
                continue
            name, size = tally.head.popleft()
            self._drop(queue, name, tally.limits)
            tally.count -= 1  # dropped, or vanished: gone from the ready messages either way
            tally.size -= size

    def _drop(self, queue: str, name: str, limits: Limits) -> None:
        """Dead-letter (or delete) the message ``name`` of ``queue``, unless it is gone."""
        transport = self.transport
        path: Path | None = None
        for candidate in dict.fromkeys((name, _redelivered(name))):  # maybe requeued since
            with suppress(FileNotFoundError):
                path = transport.claim(queue, candidate)
                break
        if path is None:
            return
        try:
            payload: Payload = loads(path.read_bytes())
            info = payload["properties"].setdefault("delivery_info", {})
        except (ValueError, KeyError, TypeError, AttributeError):
            transport.park(queue, path)
            return
        target = limits.dead_letter_queue(queue, str(info.get("routing_key") or ""))
        if target is None:
            path.unlink(missing_ok=True)  # as RabbitMQ does without a dead-letter exchange
            return
        _add_death(payload, queue, "maxlen")
        info.update(exchange=limits.dead_letter_exchange, routing_key=target)
        payload.pop("redelivered", None)
        stem = name.partition(".")[0]
        try:
            _write_file(
                transport.root / "queues" / target,
                f"{stem}.{uuid.uuid4().hex[:8]}{_TMP}",
                stem + _READY,
                dumps(payload).encode(),
                transport.fsync,
            )
        except OSError:
            with suppress(OSError):  # else it goes back when this connection closes
                os.rename(path, transport.root / "queues" / queue / path.name)
            raise
        # a crash before this unlink returns the claim to the queue: a duplicate, never a loss
        path.unlink(missing_ok=True)


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
        return [n for n in _listdir(self._folder(queue)) if n.endswith(_READY)]

    def prepare_queue_arguments(self, arguments: Mapping[str, Any], **kwargs: Any) -> Any:
        # kombu's virtual channels drop Queue(max_length=..., max_length_bytes=...); AMQP's turn
        # them into x-arguments, and so does this one
        return to_rabbitmq_queue_arguments(arguments, **kwargs)

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
        file = self._exchange_file(exchange or "")
        try:
            f = file.open("rb+", buffering=0)
        except FileNotFoundError:
            return
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            rows = [filesystem.exchange_queue_t(*row) for row in loads(f.read().decode())]
            kept = [row for row in rows if row.queue != queue]
            if len(kept) != len(rows):
                f.seek(0)
                f.write(dumps(kept).encode())
                f.truncate()

    # kombu's AbstractChannel names the payload `message`, its filesystem Channel `payload`: no
    # signature satisfies both, so mypy is told to accept the filesystem one
    def _put(self, queue: str, payload: Payload, **kwargs: Any) -> None:  # type: ignore[override]
        self._deliver_to(queue, dumps(payload).encode(), _body_size(payload))

    def _put_fanout(self, exchange: str, payload: Payload, routing_key: str, **kw: Any) -> None:
        data, size = dumps(payload).encode(), _body_size(payload)
        for queue in dict.fromkeys(row.queue for row in self.get_table(exchange)):
            self._deliver_to(queue, data, size)

    def _deliver_to(self, queue: str, data: bytes, size: int) -> None:
        folder = self._folder(queue)
        stem = f"{_STAMPS.next()}-{size}"  # the body size in the name: bounds never read files
        try:
            _write_file(folder, stem + _TMP, stem + _READY, data, self.connection.fsync)
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
            payload: Payload = loads(path.read_bytes())
            props = payload["properties"]
        except (ValueError, KeyError, TypeError):
            # not a message we wrote; parked so it cannot stall the queue by crashing each consumer
            self.connection.park(queue, path)
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
        self.bounds = Bounds(self)

    def create_channel(self, connection: Any) -> Any:
        if self._owner_lock is None:
            self._start()
        return super().create_channel(connection)

    def close_connection(self, connection: Any) -> None:
        if self._owner_lock is not None:
            self.bounds.finish()  # while this owner can still claim what it drops
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
