"""The embedded broker's bounded queues: x-max-length(-bytes), drop-head into dead letters."""

# kombu ships py.typed but leaves most functions unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import heapq
import json
import os
import uuid
from collections import deque
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem

from logfan.daemon.broker.spool.files import (
    READY,
    TMP,
    add_death,
    decode_payload,
    encode_payload,
    listdir,
    log,
    redelivered_name,
    size_of,
    write_file,
)

if TYPE_CHECKING:
    from logfan.daemon.broker.spool.transport import Transport

#: a publisher lists a bounded queue's folder again after publishing this fraction of what the
#: queue held after its last listing (see ``Bounds``)
RELIST_FRACTION = 16


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
            or not filesystem.Channel._is_valid_exchange_name(routing_key)
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
        valid = target and target != queue and filesystem.Channel._is_valid_exchange_name(target)
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
            write_file(
                file.parent, f".{uuid.uuid4().hex}{TMP}", file.name, data, self.transport.fsync
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
        names = [n for n in listdir(folder) if n.endswith(READY)]
        count = len(names)
        if limits.max_bytes is None:
            keep = min(count, limits.max_length if limits.max_length is not None else count)
            budget = max(1, keep // RELIST_FRACTION)
            oldest = heapq.nsmallest(count - keep + budget, names)
            return _Tally(limits, deque((name, 0) for name in oldest), count, 0, budget)
        names.sort()
        sizes = [size_of(folder, name) for name in names]
        total = left = sum(sizes)
        drop = 0
        while drop < count and limits.exceeded(count - drop, left):
            left -= sizes[drop]
            drop += 1
        budget = max(1, (count - drop) // RELIST_FRACTION)
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
        for candidate in dict.fromkeys((name, redelivered_name(name))):  # maybe requeued since
            with suppress(FileNotFoundError):
                path = transport.claim(queue, candidate)
                break
        if path is None:
            return
        try:
            payload = decode_payload(path.read_bytes())
            info = payload["properties"].setdefault("delivery_info", {})
        except (ValueError, KeyError, TypeError, AttributeError):
            transport.park(queue, path)
            return
        target = limits.dead_letter_queue(queue, str(info.get("routing_key") or ""))
        if target is None:
            path.unlink(missing_ok=True)  # as RabbitMQ does without a dead-letter exchange
            return
        add_death(payload, queue, "maxlen")
        info.update(exchange=limits.dead_letter_exchange, routing_key=target)
        payload.pop("redelivered", None)
        stem = name.partition(".")[0]
        try:
            write_file(
                transport.root / "queues" / target,
                f"{stem}.{uuid.uuid4().hex[:8]}{TMP}",
                stem + READY,
                encode_payload(payload),
                transport.fsync,
            )
        except OSError:
            with suppress(OSError):  # else it goes back when this connection closes
                os.rename(path, transport.root / "queues" / queue / path.name)
            raise
        # a crash before this unlink returns the claim to the queue: a duplicate, never a loss
        path.unlink(missing_ok=True)
