"""The embedded broker's exclusive queues: deleted with the connection that declared them.

A queue declared ``exclusive`` belongs to its connection, as on RabbitMQ. The spool records
that in ``control/exclusive/<queue>``, a file holding the owner's name (the connection's folder
under ``inflight/``), written before the queue's folder and binding exist. The queue is deleted:

- when its connection closes (``Transport.close_connection``);
- after its connection died (SIGKILL, a crash): by the next transport of any process that
  opens its first channel on the spool (`logfan emit`, `logfan tail`, a worker of `logfan run`
  connecting), which sees the owner's lock file free, as it does to return claims.

Deleting a queue removes its bindings from every exchange file first (under the exclusive lock a
fanout publish shares while it delivers, so no publish that read the old bindings is still
writing into the queue), then its messages and folder, then its stored arguments, and its marker
last: a crash part way leaves the marker, and the next sweep finishes the job. ``auto_delete`` is
not honoured on its own: a queue that is also exclusive goes with its connection.
"""

# kombu ships py.typed but leaves most functions unannotated; calling them is unavoidable here.
# mypy: disable-error-code="no-untyped-call"

from __future__ import annotations

import errno
import fcntl
import os
import uuid
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

from logfan.daemon.broker.spool.files import LOCK, TMP, listdir, log, write_file

if TYPE_CHECKING:
    from logfan.daemon.broker.spool.transport import Transport

#: the folder under ``control/`` that holds one owner file per exclusive queue
MARKERS = "exclusive"


def remove_bindings(control: Path, queue: str, exchange: str | None = None) -> None:
    """Remove every binding of ``queue`` from the shared table of ``exchange`` (all: None).

    Each exchange file is rewritten under its exclusive flock, which waits for the publishes
    delivering with the table they read before (they hold it shared).
    """
    names = [f"{exchange}.exchange"] if exchange is not None else listdir(control)
    for name in names:
        if not name.endswith(".exchange"):
            continue
        try:
            f = (control / name).open("rb+", buffering=0)
        except FileNotFoundError:
            continue
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            rows = [filesystem.exchange_queue_t(*row) for row in loads(f.read().decode())]
            kept = [row for row in rows if row.queue != queue]
            if len(kept) != len(rows):
                f.seek(0)
                f.write(dumps(kept).encode())
                f.truncate()


def alive(root: Path, owner: str) -> bool:
    """True while the connection named ``owner`` lives (its ``owner.lock`` is flocked)."""
    try:
        fd = os.open(root / "inflight" / owner / LOCK, os.O_RDWR)
    except FileNotFoundError:
        return False  # recovered (or never made): its process is gone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing releases the lock if we took it
    return False


def delete_queue(root: Path, queue: str) -> None:
    """Delete ``queue`` from the spool: its bindings, its messages, its folder, its arguments.

    Idempotent; raises OSError if a step fails (the caller keeps the marker for a later try).
    """
    remove_bindings(root / "control", queue)
    folder = root / "queues" / queue
    for attempt in range(3):  # a message a recovery returned to it meanwhile: list again
        for name in listdir(folder):
            with suppress(FileNotFoundError):
                os.unlink(folder / name)
        try:
            folder.rmdir()
        except FileNotFoundError:
            break
        except OSError as exc:
            if exc.errno != errno.ENOTEMPTY or attempt == 2:
                raise
            continue
        break
    (root / "control" / "queues" / f"{queue}.json").unlink(missing_ok=True)


class Exclusive:
    """One connection's exclusive queues, and the sweep of those whose connection is gone."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.mine: set[str] = set()

    @property
    def folder(self) -> Path:
        return self.transport.root / "control" / MARKERS

    def _owner_of(self, queue: str) -> str | None:
        """The name of the connection that declared ``queue`` exclusive (None: none, or junk)."""
        try:
            owner = (self.folder / queue).read_text().strip()
        except FileNotFoundError:
            return None
        return owner if filesystem.Channel._is_valid_exchange_name(owner) and owner else None

    def declare(self, queue: str) -> None:
        """Make ``queue`` this connection's (before it is created or bound).

        Raises ChannelError (RESOURCE_LOCKED) when another live connection owns it; a queue
        left by a dead one is deleted first, as RabbitMQ would have.
        """
        if queue in self.mine:
            return
        me = self.transport.owner.name
        owner = self._owner_of(queue)
        if owner is not None and owner != me:
            if alive(self.transport.root, owner):
                raise ChannelError(
                    f"RESOURCE_LOCKED - cannot obtain exclusive access to locked queue "
                    f"{queue!r}: another connection declared it exclusive",
                    (50, 10),
                    "Channel.queue_declare",
                    "405",
                )
            self._delete(queue)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            name = f".{uuid.uuid4().hex}{TMP}"
            write_file(self.folder, name, queue, me.encode(), self.transport.fsync)
        except OSError as exc:
            raise ChannelError(f"cannot declare exclusive queue {queue!r}: {exc}") from exc
        self.mine.add(queue)

    def delete(self, queue: str) -> None:
        """Delete ``queue`` now (``queue_delete``), whoever declared it. One of this
        connection's is deleted again when it closes, after its channels returned what they
        held unacknowledged."""
        try:
            self._delete(queue)
        except OSError as exc:
            raise ChannelError(f"cannot delete queue {queue!r}: {exc}") from exc

    def _delete(self, queue: str) -> None:
        delete_queue(self.transport.root, queue)
        (self.folder / queue).unlink(missing_ok=True)

    def finish(self) -> None:
        """Delete every exclusive queue of this connection (it is closing; never raises)."""
        mine, self.mine = self.mine, set()
        for queue in sorted(mine):
            try:
                self._delete(queue)
            except OSError as exc:  # the marker stays: the next transport to start deletes it
                log.warning("cannot delete exclusive queue %s: %s", queue, exc)

    def sweep(self) -> None:
        """Delete the exclusive queues whose connection is gone (never raises)."""
        root = self.transport.root
        for queue in listdir(self.folder):
            if queue.startswith("."):
                continue  # a marker being written
            owner = None
            try:
                owner = self._owner_of(queue)
                if owner is not None and alive(root, owner):
                    continue
                self._delete(queue)
            except (OSError, ValueError) as exc:
                log.warning("cannot delete exclusive queue %s left by %s: %s", queue, owner, exc)
            else:
                log.info("deleted exclusive queue %s of a closed connection %s", queue, owner)
