"""Sink options: the one vocabulary of checked getters, and what sinks make of any value."""

from __future__ import annotations

import contextlib

from hypothesis import given
from hypothesis import strategies as st

from logfan.sinks.base import Options, SinkConfigError
from logfan.sinks.console import ConsoleSink
from logfan.sinks.file import FileSink

texts = st.text(alphabet=st.characters(codec="utf-8"), max_size=200)


class TestSinkOptionsProperties:
    """Any option values given to a built-in sink: the sink, or a SinkConfigError."""

    @given(
        options=st.dictionaries(
            st.sampled_from(["stream", "format", "control_chars", "x"]), texts, max_size=3
        )
    )
    def test_sink_options_raise_only_sink_config_error(self, options: dict[str, str]) -> None:
        """Arbitrary option values: a sink or a SinkConfigError."""
        for cls, base in (
            (ConsoleSink, {"type": "console"}),
            (FileSink, {"type": "file", "path": "/tmp/x"}),
        ):
            with contextlib.suppress(SinkConfigError):
                cls("s", Options("s", {**base, **options}))
