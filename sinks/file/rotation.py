"""Size-based rotation for the file sink: shift ``path.N``, rename, gzip without losing a file."""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import os
import shutil
import threading

from logfan.sinks.base import Options
from logfan.sinks.disk import fsync_dir

__all__ = ["MAX_KEEP", "RotatePolicy", "Rotator", "compress_file", "rotate_option"]

#: the most rotated files ``keep`` may ask for.
MAX_KEEP = 1000
DEFAULT_KEEP = 5
EXAMPLE = "{max_bytes: 100MiB, keep: 5, compress: true}"
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


@dataclasses.dataclass(frozen=True, slots=True)
class RotatePolicy:
    """``rotate:`` of a file sink: rotate before a batch would pass ``max_bytes``."""

    max_bytes: int
    keep: int = DEFAULT_KEEP
    compress: bool = False


def rotate_option(options: Options) -> RotatePolicy | None:
    """Read and check ``rotate`` (absent: no built-in rotation)."""
    rotate = options.section("rotate", example=EXAMPLE)
    if rotate is None:
        return None
    policy = RotatePolicy(
        max_bytes=rotate.get_size("max_bytes"),
        keep=rotate.get_int(
            "keep", DEFAULT_KEEP, minimum=1, maximum=MAX_KEEP, unit="rotated files"
        ),
        compress=rotate.get_bool("compress", False),
    )
    rotate.finish()
    return policy


def compress_file(src: str) -> str:
    """Gzip ``src`` into ``src.gz`` and remove ``src``; at every instant one of them is whole.

    The data goes to ``src.gz.tmp`` (same owner and mode as ``src``), is fsynced, renamed to
    ``src.gz`` and the folder fsynced; only then is ``src`` deleted. A crash leaves ``src``
    (and maybe a stale ``.tmp``), or both files, never neither.
    """
    dst, tmp = f"{src}.gz", f"{src}.gz.tmp"
    with open(src, "rb", opener=lambda p, f: os.open(p, f | _NOFOLLOW)) as fin:
        st = os.fstat(fin.fileno())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as raw:
            if os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)
            os.fchmod(fd, st.st_mode & 0o7777)
            name = os.path.basename(src)
            with gzip.GzipFile(name, "wb", 6, raw, mtime=int(st.st_mtime)) as gz:
                shutil.copyfileobj(fin, gz, 1 << 20)
            raw.flush()
            os.fsync(fd)
    os.rename(tmp, dst)
    fsync_dir(os.path.dirname(src))
    os.unlink(src)
    return dst


class Rotator:
    """Rotates one path: ``path.N`` -> ``path.N+1`` up to ``keep``, ``path`` -> ``path.1``.

    Compression runs in a background thread so a large file never stalls the consumer (whose
    broker heartbeats would stop); the next rotation waits for it before shifting names, and
    the interpreter waits for it at exit.
    """

    def __init__(self, path: str, policy: RotatePolicy) -> None:
        self.path = path
        self.policy = policy
        self._worker: threading.Thread | None = None
        self._failure: OSError | None = None

    def due(self, size: int, incoming: int) -> bool:
        """True when ``incoming`` more bytes would take a non-empty file past ``max_bytes``."""
        return size > 0 and size + incoming > self.policy.max_bytes

    def rotate(self) -> None:
        """Shift the rotated files, rename ``path`` to ``path.1`` and start compressing it.

        Raises OSError, including one a previous background compression met (once).
        """
        self.wait()
        base, keep = self.path, self.policy.keep
        for ext in ("", ".gz"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{base}.{keep}{ext}")
        for n in range(keep - 1, 0, -1):
            for ext in ("", ".gz"):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(f"{base}.{n}{ext}", f"{base}.{n + 1}{ext}")
        os.rename(base, f"{base}.1")
        if self.policy.compress:
            # Not a daemon thread: a graceful exit finishes the file (kill -9 leaves path.1 whole).
            self._worker = threading.Thread(
                target=self._compress, args=(f"{base}.1",), name="logfan-gzip"
            )
            self._worker.start()

    def _compress(self, src: str) -> None:
        try:
            compress_file(src)
        except OSError as exc:  # the plain file is kept; rotate() reports it
            self._failure = exc

    def wait(self) -> None:
        """Wait for a running compression; raise the OSError it met, if any (once)."""
        if self._worker is not None:
            self._worker.join()
            self._worker = None
        failure, self._failure = self._failure, None
        if failure is not None:
            raise failure
