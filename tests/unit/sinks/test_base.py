"""The sink contract: severities, the record a sink receives, and the Sink protocol."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logfan.sinks.base import SEVERITIES, Options, Record, Sink, normalize_severity
from logfan.sinks.console import ConsoleSink
from logfan.sinks.file import FileSink
from logfan.sinks.journald import JournaldSink
from logfan.sinks.syslog import SyslogSink


class TestNormalizeSeverity:
    """``normalize_severity``: a name, alias or digit to the canonical name, else None."""

    @pytest.mark.parametrize("name", SEVERITIES)
    def test_names(self, name: str) -> None:
        """Each canonical name is itself."""
        assert normalize_severity(name) == name

    @pytest.mark.parametrize(
        ("alias", "name"),
        [
            ("emergency", "emerg"),
            ("panic", "emerg"),
            ("critical", "crit"),
            ("error", "err"),
            ("warn", "warning"),
            ("information", "info"),
            ("informational", "info"),
        ],
    )
    def test_aliases(self, alias: str, name: str) -> None:
        """The usual other spellings map to the canonical names."""
        assert normalize_severity(alias) == name

    def test_digits_are_rfc5424_numbers(self) -> None:
        """0 to 7 are the RFC 5424 severities, emerg to debug."""
        assert [normalize_severity(str(n)) for n in range(8)] == list(SEVERITIES)

    @pytest.mark.parametrize(
        ("value", "name"), [("ERR", "err"), (" Warning ", "warning"), ("\tDEBUG\n", "debug")]
    )
    def test_case_and_spaces(self, value: str, name: str) -> None:
        """Case and surrounding white space do not matter."""
        assert normalize_severity(value) == name

    @pytest.mark.parametrize(
        "value", ["", " ", "8", "9", "-1", "07", "10", "verbose", "err or", "e r r", "0x3"]
    )
    def test_refusals(self, value: str) -> None:
        """Anything else is None."""
        assert normalize_severity(value) is None

    @given(value=st.text(max_size=20))
    def test_any_text_gives_a_severity_or_none(self, value: str) -> None:
        """Any text at all: one of SEVERITIES or None, never an exception."""
        assert normalize_severity(value) in (*SEVERITIES, None)

    @pytest.mark.parametrize("value", ["³", "²", "①"])
    def test_digit_like_characters(self, value: str) -> None:
        """Characters that are digits to str.isdigit but not to int() are no severity."""
        assert normalize_severity(value) is None


class TestRecord:
    """``Record``: one line and its metadata."""

    def test_defaults(self) -> None:
        """Unknown host, tag, pid and msgid are ``-``; the severity is ``info``."""
        record = Record("hello", "2026-11-27T06:12:59.123Z")
        assert record == ("hello", "2026-11-27T06:12:59.123Z", "-", "-", "info", "-", "-")
        assert (record.host, record.tag, record.severity, record.pid, record.msgid) == (
            "-",
            "-",
            "info",
            "-",
            "-",
        )

    def test_immutable(self) -> None:
        """A record cannot be changed after it is made."""
        record = Record("hello", "t")
        with pytest.raises(AttributeError):
            record.message = "changed"  # type: ignore[misc]


class NoFlush:
    """Everything a sink has but ``flush``."""

    name = "x"

    def open(self) -> None: ...

    def write(self, records: Sequence[Record]) -> None: ...

    def close(self) -> None: ...


class Complete(NoFlush):
    """A sink by shape alone: no base class needed."""

    def flush(self) -> None: ...


class TestSinkProtocol:
    """``Sink``: what the daemon calls, checked at run time."""

    def test_built_in_sinks_are_sinks(self, tmp_path: Path) -> None:
        """Each built-in sink, as constructed from its options, satisfies the protocol."""
        sinks = [
            ConsoleSink("c", Options("c", {"type": "console"})),
            FileSink("f", Options("f", {"type": "file", "path": str(tmp_path / "f.log")})),
            SyslogSink("s", Options("s", {"type": "syslog", "address": "udp://127.0.0.1:514"})),
            JournaldSink("j", Options("j", {"type": "journald"})),
        ]
        for sink in sinks:
            assert isinstance(sink, Sink), type(sink).__name__

    def test_any_class_of_the_right_shape(self) -> None:
        """A class with name, open, write, flush and close is a Sink without inheriting."""
        assert isinstance(Complete(), Sink)

    def test_without_flush_is_not_a_sink(self) -> None:
        """A class missing ``flush`` is not a Sink."""
        assert not isinstance(NoFlush(), Sink)


class TestSupportsReopen:
    """``SupportsReopen``: the sinks that let go of their files on demand."""

    def test_the_file_sink_reopens_the_console_does_not(self, tmp_path: Path) -> None:
        """The file sink has ``reopen``; the console sink, with nothing to reopen, has not."""
        from logfan.sinks.base import Options, SupportsReopen
        from logfan.sinks.console import ConsoleSink
        from logfan.sinks.file import FileSink

        file_sink = FileSink("f", Options("f", {"path": str(tmp_path / "f.log")}))
        assert isinstance(file_sink, SupportsReopen)
        assert not isinstance(ConsoleSink("c", Options("c", {})), SupportsReopen)
