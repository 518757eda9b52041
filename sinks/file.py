"""The ``file`` sink: appends whole lines, survives logrotate, never writes through a symlink."""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence

from logfan.sinks.base import Options, Record, RetryableSinkError
from logfan.sinks.template import CONTROL_POLICIES, control_filter, template_option

DEFAULT_FORMAT = "{timestamp} {host} {tag}: {message}"
_OPEN_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC


class FileSink:
    """Appends each batch to ``path`` with one ``write`` so ``tail -F`` never sees half a line.

    ``O_APPEND`` keeps ``copytruncate`` rotation working; before each batch the path's device
    and inode are compared with the open file and the file is reopened when it was moved or
    deleted (logrotate's ``create``), as CPython's ``WatchedFileHandler`` does.
    """

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        path = options.get_str("path")
        self.path: str = os.path.abspath(path)
        self.mode: int = options.get_mode("mode", 0o640)
        self.fsync: bool = options.get_bool("fsync", False)
        self.template = template_option(options, DEFAULT_FORMAT)
        self.clean = control_filter(options.get_choice("control_chars", CONTROL_POLICIES, "escape"))
        options.finish()
        self._fd: int | None = None
        self._ident: tuple[int, int] | None = None

    def _error(self, action: str, exc: OSError) -> RetryableSinkError:
        reason = exc.strerror or str(exc)
        if exc.errno == errno.ELOOP:
            reason = "the path is a symlink, which this sink refuses to write through"
        return RetryableSinkError(f"sink {self.name!r}: cannot {action} {self.path}: {reason}")

    def open(self) -> None:
        """Create the parent directories (0750) and open the file for appending."""
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o750, exist_ok=True)
            fd = os.open(self.path, _OPEN_FLAGS, self.mode)
        except OSError as exc:
            raise self._error("open", exc) from exc
        st = os.fstat(fd)
        self._fd, self._ident = fd, (st.st_dev, st.st_ino)

    def _reopen_if_moved(self) -> int:
        try:
            st = os.stat(self.path, follow_symlinks=False)
            moved = (st.st_dev, st.st_ino) != self._ident
        except FileNotFoundError:
            moved = True
        if moved or self._fd is None:
            self.close()
            self.open()
        if self._fd is None:  # open() either sets it or raises
            raise self._error("open", OSError(errno.EBADF, "not open"))
        return self._fd

    def write(self, records: Sequence[Record]) -> None:
        """Append the batch as one buffer; a short write is continued, never left half a line."""
        data = "".join(self.template.render(r, self.clean) + "\n" for r in records).encode(
            "utf-8", "surrogateescape"
        )
        fd = self._reopen_if_moved()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            raise self._error("write to", exc) from exc

    def flush(self) -> None:
        """With ``fsync: true``, make the written lines durable before they are acknowledged."""
        if self.fsync and self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise self._error("fsync", exc) from exc

    def close(self) -> None:
        """Close the file; the next write reopens it."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
