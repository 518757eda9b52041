"""The ``console`` sink: whole lines to the daemon's stdout or stderr, one write per batch."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import ClassVar

from logfan.sinks.base import Options, Record, RetryableSinkError
from logfan.sinks.template import CONTROL_POLICIES, render_lines, template_option

DEFAULT_FORMAT = "{timestamp} {host} {tag}: {message}"


class ConsoleSink:
    """Writes each batch as whole lines to ``stream`` (stdout or stderr) and flushes it."""

    #: one line of help per option, shown by `logfan sinks console`.
    OPTION_HELP: ClassVar[dict[str, str]] = {
        "stream": "stdout or stderr, the daemon's own",
        "format": "each line's text: a template such as {timestamp} {tag}: {message}",
        "control_chars": "control characters in a line: escape (as \\n, \\x1b...), strip or keep",
    }

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.stream: str = options.get_choice("stream", ("stdout", "stderr"), "stdout")
        self.template = template_option(options, DEFAULT_FORMAT)
        self.control_chars: str = options.get_choice("control_chars", CONTROL_POLICIES, "escape")
        options.finish()

    def open(self) -> None:
        """Nothing to open: the stream belongs to the process."""

    def _fd(self) -> int:
        stream = sys.stdout if self.stream == "stdout" else sys.stderr
        stream.flush()
        return stream.fileno()

    def write(self, records: Sequence[Record]) -> None:
        """Write the batch with as few system calls as the stream allows."""
        data = render_lines(self.template, records, self.control_chars).encode(
            "utf-8", "surrogateescape"
        )
        try:
            fd = self._fd()
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError as exc:
            msg = f"sink {self.name!r}: cannot write to {self.stream}: {exc}"
            raise RetryableSinkError(msg) from exc

    def flush(self) -> None:
        """Writes go straight to the descriptor; nothing is buffered here."""

    def close(self) -> None:
        """The stream stays open: it belongs to the process."""
