"""The ``file`` sink: appends whole lines, survives logrotate, never writes through a symlink."""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import pwd
from collections.abc import Callable, Sequence
from typing import ClassVar

from logfan.sinks.base import Options, Record, RetryableSinkError
from logfan.sinks.file.namewatch import NameWatch
from logfan.sinks.file.rotation import Rotator, rotate_option
from logfan.sinks.template import CONTROL_POLICIES, render_lines, template_option

DEFAULT_FORMAT = "{timestamp} {host} {tag}: {message}"
_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
#: (uid_t)-1 means "no change" to chown; user and group numbers are below it.
_NO_ID = 2**32 - 1
#: a batch that lands in a file renamed away meanwhile is moved to the new file this often at most
_MOVES = 3


def _account(options: Options, key: str, what: str, lookup: Callable[[str], int]) -> int | None:
    """``owner`` / ``group``: a name that must exist here, or a number (taken as it is)."""
    value = options.get_raw(key)
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _NO_ID:
        return int(value)
    if isinstance(value, str) and value:
        try:
            return lookup(value)
        except (KeyError, ValueError):  # ValueError: a NUL in the name
            raise options.error(key, f"no {what} named {value!r} on this host") from None
    raise options.error(key, f"expected a {what} name or number, got {value!r}")


class FileSink:
    """Appends each batch to ``path`` with one ``write`` so ``tail -F`` never sees half a line.

    Writes are unbuffered: a batch is on the file (visible to ``tail -F``) as soon as ``write``
    returns. ``O_APPEND`` keeps ``copytruncate`` rotation working; before each batch the path's
    device and inode are compared with the open file and the file is reopened when it was moved
    or deleted (logrotate's ``create``), as CPython's ``WatchedFileHandler`` does; ``reopen()``
    (SIGHUP) lets go of a rotated file at once. A batch that lands in the file after it was
    renamed or deleted (between the check and the write) is cut off it again and written to the
    new file, so ``tail -F`` and the files hold it once (``NameWatch`` tells which came first).
    ``rotate:`` rotates by size without logrotate.
    A file this sink creates gets ``mode`` exactly (whatever the umask) and ``owner``/``group``.
    """

    #: one line of help per option, shown by `logfan sinks file`.
    OPTION_HELP: ClassVar[dict[str, str]] = {
        "path": "the file to append to; its folder is created 0750",
        "mode": "the mode of a file logfan creates, exactly, whatever the umask",
        "fsync": "acknowledge a batch only once it is on disk",
        "owner": "the user (name or number) of a file logfan creates",
        "group": "the group (name or number) of a file logfan creates",
        "rotate": "built-in rotation instead of logrotate: max_bytes, keep, compress",
        "format": "each line's text: a template such as {timestamp} {tag}: {message}",
        "control_chars": "control characters in a line: escape (as \\n, \\x1b...), strip or keep",
    }

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        path = options.get_str("path")
        self.path: str = os.path.abspath(path)
        self.mode: int = options.get_mode("mode", 0o640)
        self.fsync: bool = options.get_bool("fsync", False)
        self.uid = _account(options, "owner", "user", lambda n: pwd.getpwnam(n).pw_uid)
        self.gid = _account(options, "group", "group", lambda n: grp.getgrnam(n).gr_gid)
        policy = rotate_option(options)
        self.rotator = Rotator(self.path, policy) if policy else None
        self.template = template_option(options, DEFAULT_FORMAT)
        self.control_chars: str = options.get_choice("control_chars", CONTROL_POLICIES, "escape")
        options.finish()
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None
        self._watch: NameWatch | None = None

    def _error(self, action: str, exc: OSError) -> RetryableSinkError:
        reason = exc.strerror or str(exc)
        if exc.filename and exc.filename != self.path:
            reason = f"{exc.filename}: {reason}"
        elif exc.errno == errno.ELOOP:
            reason = "the path is a symlink, which this sink refuses to write through"
        return RetryableSinkError(f"sink {self.name!r}: cannot {action} {self.path}: {reason}")

    def open(self) -> None:
        """Create the parent directories (0750) and open the file for appending."""
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o750, exist_ok=True)
            fd = self._open_or_create()
        except OSError as exc:
            raise self._error("open", exc) from exc
        st = os.fstat(fd)
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)
        self._watch = NameWatch.of(fd)

    def _open_or_create(self) -> int:
        while True:
            try:
                fd = os.open(self.path, _FLAGS | os.O_CREAT | os.O_EXCL, self.mode)
            except FileExistsError:
                pass
            else:
                return self._created(fd)
            try:
                return os.open(self.path, _FLAGS)
            except FileNotFoundError:
                continue  # deleted between the two calls: create it

    def _created(self, fd: int) -> int:
        """Give a file we just created its mode and owner; on failure remove it again."""
        try:
            os.fchmod(fd, self.mode)
            st = os.fstat(fd)
            # Only a real change calls fchown, which the shipped unit's syscall filter refuses.
            uid = -1 if self.uid in (None, st.st_uid) else self.uid
            gid = -1 if self.gid in (None, st.st_gid) else self.gid
            if (uid, gid) != (-1, -1):
                os.fchown(fd, uid, gid)
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            owner = f"owner {self.uid if self.uid is not None else '-'}"
            owner += f", group {self.gid if self.gid is not None else '-'}"
            reason = f"cannot give the new file mode {self.mode:04o}, {owner}: {exc.strerror}"
            raise OSError(exc.errno, reason) from exc
        return fd

    def _moved(self) -> bool:
        """Whether the path no longer names the open file (renamed away or deleted)."""
        try:
            st = os.stat(self.path, follow_symlinks=False)
        except FileNotFoundError:
            return True
        return (st.st_dev, st.st_ino) != self._ident

    def _reopen_if_moved(self) -> int:
        if self._fd is None or self._moved():
            self.close()
            self.open()
        if self._fd is None:  # open() either sets it or raises
            raise self._error("open", OSError(errno.EBADF, "not open"))
        return self._fd

    def _target(self, incoming: int) -> int:
        """The descriptor to append ``incoming`` bytes to, after any reopen or rotation."""
        fd = self._reopen_if_moved()
        if self.rotator is None or not self.rotator.due(os.fstat(fd).st_size, incoming):
            return fd
        self.close()
        try:
            self.rotator.rotate()
        except OSError as exc:
            raise self._error("rotate", exc) from exc
        return self._reopen_if_moved()

    def write(self, records: Sequence[Record]) -> None:
        """Append the batch as one buffer; a short write is continued, never left half a line."""
        data = render_lines(self.template, records, self.control_chars).encode(
            "utf-8", "surrogateescape"
        )
        for _ in range(_MOVES):
            fd = self._target(len(data))
            start = os.fstat(fd).st_size
            self._append(fd, data, start)
            if not self._cut_if_written_after_move(fd, start, start + len(data)):
                return
        # Renamed away under every one of these writes: the batch stays in the last renamed file.

    def _append(self, fd: int, data: bytes, start: int) -> None:
        view, done = memoryview(data), 0
        try:
            while done < len(data):
                done += os.write(fd, view[done:])
        except OSError as exc:
            if done:
                self._undo(fd, start + done, start)
            raise self._error("write to", exc) from exc

    def _cut_if_written_after_move(self, fd: int, start: int, end: int) -> bool:
        """When the file was renamed or deleted before this write landed, cut the batch off it
        again (unless something else changed its size) and say so: the caller writes it anew."""
        watch = self._watch
        if watch is None or not watch.wrote_after_losing_name() or not self._moved():
            return False
        try:
            if os.fstat(fd).st_size != end:
                return False
            os.ftruncate(fd, start)
        except OSError:
            return False
        return True

    def _undo(self, fd: int, end: int, start: int) -> None:
        """Cut a partly written batch off again (disk full), so the retry leaves no torn line."""
        with contextlib.suppress(OSError):
            if os.fstat(fd).st_size == end:  # nobody truncated or appended meanwhile
                os.ftruncate(fd, start)

    def flush(self) -> None:
        """With ``fsync: true``, make the written lines durable before they are acknowledged."""
        if self.fsync and self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise self._error("fsync", exc) from exc

    def reopen(self) -> None:
        """Close the file and open the path again (after SIGHUP; raises like ``open``)."""
        self.close()
        self.open()

    def close(self) -> None:
        """Close the file; the next write reopens it."""
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
