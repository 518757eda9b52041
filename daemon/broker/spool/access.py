"""Who may use a spool: access checked before a connection, and one daemon per spool."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

__all__ = ["DAEMON_LOCK", "SUBFOLDERS", "hold", "unusable"]

#: the folders every connection writes in (a connection claims messages under inflight/).
SUBFOLDERS = ("control", "queues", "inflight")
#: held (flock) by the one `logfan run` that consumes the spool; it holds its pid.
DAEMON_LOCK = "daemon.lock"


def unusable(root: Path) -> Path | None:
    """The first folder of the spool at ``root`` this process may not write in (None: all fine).

    A spool that does not exist yet needs its nearest existing parent to be writable; a folder
    this process may not even look into is named as the one it cannot use.
    """
    try:
        nearest = root
        while not nearest.exists() and nearest != nearest.parent:
            nearest = nearest.parent
        folders = [nearest, *(root / sub for sub in SUBFOLDERS)]
        if root.is_dir() and (root / "queues").is_dir():
            folders += [f for f in (root / "queues").iterdir() if f.is_dir()]
        for folder in folders:
            if folder.exists() and not os.access(folder, os.W_OK | os.X_OK, effective_ids=True):
                return folder
    except PermissionError as exc:
        return Path(exc.filename) if exc.filename else root
    return None


def hold(root: Path) -> int:
    """Take the spool for this daemon: a file descriptor holding ``DAEMON_LOCK`` (keep it open).

    Raises BlockingIOError naming the running daemon when another one holds it.
    """
    root.mkdir(parents=True, exist_ok=True)
    fd = os.open(root / DAEMON_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        with contextlib.suppress(OSError):
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
        os.close(fd)
        raise BlockingIOError(
            errno.EWOULDBLOCK, f"another logfan run (pid {pid}) is using the spool {root}"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd
