"""The console sink: whole lines to stdout or stderr of the daemon process."""

from __future__ import annotations

import subprocess
import sys

import pytest

from logfan.sinks.base import Options, SinkConfigError
from logfan.sinks.console import ConsoleSink

SCRIPT = """
from logfan.sinks.base import Options, Record
from logfan.sinks.console import ConsoleSink
opts = {"type": "console", "stream": "%s", "format": "{tag}: {message}"}
s = ConsoleSink("c", Options("c", opts))
s.open()
s.write([Record("one", "2026-01-01T00:00:00.000Z", tag="t"), Record("two\\rthree", "x", tag="t")])
s.flush()
s.close()
"""


class TestConsoleSink:
    """Writing to the process's own streams."""

    @pytest.mark.parametrize("stream", ["stdout", "stderr"])
    def test_lines_go_to_the_chosen_stream(self, stream: str) -> None:
        """Each record is one line on the chosen stream; CR is escaped."""
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT % stream], capture_output=True, check=True
        )
        out = done.stdout if stream == "stdout" else done.stderr
        other = done.stderr if stream == "stdout" else done.stdout
        assert out == b"t: one\nt: two\\rthree\n"
        assert other == b""

    def test_bad_stream(self) -> None:
        """Only stdout and stderr are accepted."""
        with pytest.raises(SinkConfigError) as caught:
            ConsoleSink("c", Options("c", {"type": "console", "stream": "stdlog"}))
        assert caught.value.key == "stream"
        assert "expected one of stdout, stderr; got 'stdlog'" in str(caught.value)
