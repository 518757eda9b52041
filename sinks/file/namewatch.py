"""Did an open file lose its name before our last write? inotify keeps the order of the two.

A writer that checks the path's device and inode before each write still loses a race: logrotate
may rename (or someone delete) the file between the check and the write. The write then lands in
a file that ``tail -F`` has already left: tail follows the name, and on the rename event it closes
the old file without reading what comes after (coreutils' ``recheck()`` says so in a FIXME). The
inotify queue holds the file's events in the order they happened, which is the order tail sees
them in, so it tells the two cases apart exactly: rename-then-write (tail misses the batch) and
write-then-rename (tail reads the batch before it handles the rename).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import struct

IN_MODIFY = 0x002
IN_ATTRIB = 0x004  # unlink (link count), chmod, chown
IN_DELETE_SELF = 0x400
IN_MOVE_SELF = 0x800
IN_Q_OVERFLOW = 0x4000
#: events that can mean the file no longer has its name (the caller checks the path to be sure)
NAME_EVENTS = IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


_LIBC = ctypes.CDLL(None, use_errno=True)


class NameWatch:
    """inotify on one open file, read after each write (``wrote_after_losing_name``)."""

    def __init__(self, ifd: int, wd: int) -> None:
        self._ifd = ifd
        self._wd = wd

    @classmethod
    def of(cls, fd: int) -> NameWatch | None:
        """Watch the file open on ``fd`` (not whatever its path names now); None where inotify
        is not available (another OS, or the per-user limit of inotify instances reached)."""
        init = getattr(_LIBC, "inotify_init1", None)
        if init is None:
            return None
        ifd = int(init(os.O_NONBLOCK | os.O_CLOEXEC))
        if ifd < 0:
            return None
        # /proc/self/fd/N resolves to the open file itself, even if it was renamed meanwhile.
        mask = IN_MODIFY | NAME_EVENTS
        wd = int(_LIBC.inotify_add_watch(ifd, f"/proc/self/fd/{fd}".encode(), mask))
        if wd < 0:
            os.close(ifd)
            return None
        return cls(ifd, wd)

    def _events(self) -> list[int]:
        """The masks queued for the watched file since the last call, oldest first.

        One read is enough: a write queues its event before it returns, so everything that
        happened up to the caller's last write is in the queue; what comes later is for the
        next call (or for nobody, once the file is reopened).
        """
        try:
            buf = os.read(self._ifd, 65536)
        except BlockingIOError:
            return []
        masks: list[int] = []
        at = 0
        while at + _EVENT.size <= len(buf):
            wd, mask, _cookie, length = _EVENT.unpack_from(buf, at)
            at += _EVENT.size + length
            if wd == self._wd or mask & IN_Q_OVERFLOW:
                masks.append(mask)
        return masks

    def wrote_after_losing_name(self) -> bool:
        """True when, since the last call, the file may have lost its name (a rename, a delete,
        a change of attributes) and was written after that; also when events were dropped."""
        lost_name = False
        for mask in self._events():
            if mask & IN_Q_OVERFLOW:
                return True
            if mask & NAME_EVENTS:
                lost_name = True
            elif mask & IN_MODIFY and lost_name:
                return True
        return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._ifd)
