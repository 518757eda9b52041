"""A sink plugin for fault tests: a file sink that refuses chosen lines or plays 'down'.

Installed like any third-party plugin (entry point ``picky`` in ``logfan.sinks``), so the tests
also prove that plugins load the way the built-in sinks do. Options: ``path`` (where accepted
lines go, one message per line), ``reject_file`` (a file of substrings, one per line: a line
containing one raises ``ValueError``, or PermanentSinkError with ``refuse: permanent``), and
``down_file`` (while this file exists every write raises RetryableSinkError: target down),
``crash_file`` (if it exists, the next write removes it and raises SystemExit, which ends the
consumer thread: the supervisor must restart it), ``hang_file`` (while it exists, a write blocks:
a wedged sink).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from logfan.sinks.base import Options, PermanentSinkError, Record, RetryableSinkError


class PickySink:
    """Appends each record's message to ``path`` unless told to refuse it."""

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.path: str = options.get_str("path")
        self.reject_file: str | None = options.get_str("reject_file", None)
        self.down_file: str | None = options.get_str("down_file", None)
        self.refuse: str = options.get_choice("refuse", ("error", "permanent"), "error")
        self.crash_file: str | None = options.get_str("crash_file", None)
        self.hang_file: str | None = options.get_str("hang_file", None)
        options.finish()

    def open(self) -> None:
        """Nothing to open: each batch appends."""

    def _rejects(self) -> list[str]:
        if not self.reject_file or not os.path.exists(self.reject_file):
            return []
        with open(self.reject_file, encoding="utf-8") as f:
            return [line.rstrip("\n") for line in f if line.strip()]

    def write(self, records: Sequence[Record]) -> None:
        """Append the batch, unless down or a record is refused (then nothing is written)."""
        while self.hang_file and os.path.exists(self.hang_file):
            time.sleep(0.05)  # a wedged target: the consumer thread is stuck right here
        if self.crash_file and os.path.exists(self.crash_file):
            os.unlink(self.crash_file)
            raise SystemExit("a plugin that ends its thread")  # not an Exception: kills it
        if self.down_file and os.path.exists(self.down_file):
            raise RetryableSinkError(f"sink {self.name!r}: target is down ({self.down_file})")
        rejects = self._rejects()
        for record in records:
            if any(r in record.message for r in rejects):
                if self.refuse == "permanent":
                    raise PermanentSinkError(f"refusing {record.message!r}")
                raise ValueError(f"cannot handle {record.message!r}")
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(r.message + "\n" for r in records))

    def flush(self) -> None:
        """Each write closes its file."""

    def close(self) -> None:
        """Nothing held open."""
