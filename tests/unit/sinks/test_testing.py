"""The plugin author's kit: check_sink catches each break of the contract, by name."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest

from logfan.sinks.base import Options, PermanentSinkError, Record, RetryableSinkError
from logfan.sinks.file import FileSink
from logfan.sinks.testing import CapturingSink, check_sink, make_records


class GoodSink:
    """Appends each message to a file; checks its one option; opens only in open()."""

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.path = options.get_str("path")
        options.finish()
        self.file: object = None

    def open(self) -> None:
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, records: Sequence[Record]) -> None:
        assert self.file is not None
        self.file.write("".join(r.message + "\n" for r in records))  # type: ignore[attr-defined]

    def flush(self) -> None:
        self.file.flush()  # type: ignore[attr-defined]

    def close(self) -> None:
        if self.file is not None:
            self.file.close()  # type: ignore[attr-defined]
            self.file = None


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


class TestCheckSinkPasses:
    """A sink that keeps the contract passes, with or without a read-back of its target."""

    def test_a_plugin_that_keeps_the_contract(self, tmp_path: Path) -> None:
        """Every message is in the file (twice: the retry writes the batch again)."""
        out = tmp_path / "out.log"
        check_sink(GoodSink, {"path": str(out)}, read=lambda: lines(out), bad=[{"path": ""}])
        assert len(lines(out)) == 200

    def test_the_built_in_file_sink(self, tmp_path: Path) -> None:
        """The file sink passes, with control characters and non-ASCII text in its lines."""
        out = tmp_path / "f.log"
        records = make_records(50, unicode=True, controls=True)
        check_sink(
            FileSink,
            {"path": str(out), "format": "{message}", "control_chars": "strip"},
            records=records,
            read=lambda: lines(out),
            bad=[{"path": str(out), "mode": "rw"}],
        )
        assert len(lines(out)) == 100, "one line per record, however hostile (twice: retry)"

    def test_the_capturing_sink(self) -> None:
        """CapturingSink keeps the contract too."""
        check_sink(CapturingSink, {})


class TestCheckSinkFails:
    """Each break of the contract is an AssertionError naming its cause."""

    def test_a_class_without_flush(self) -> None:
        class NoFlush:
            def __init__(self, name: str, options: Options) -> None:
                options.finish()

            def open(self) -> None: ...
            def write(self, records: Sequence[Record]) -> None: ...
            def close(self) -> None: ...

        with pytest.raises(AssertionError, match=r"^NoFlush lacks flush: a sink defines open,"):
            check_sink(NoFlush, {})

    def test_a_constructor_that_opens_a_file(self, tmp_path: Path) -> None:
        opened: list[IO[str]] = []

        class OpensEarly(GoodSink):
            def __init__(self, name: str, options: Options) -> None:
                super().__init__(name, options)
                opened.append(open(self.path, "a", encoding="utf-8"))  # noqa: SIM115

        try:
            with pytest.raises(AssertionError) as caught:
                check_sink(OpensEarly, {"path": str(tmp_path / "x")})
        finally:
            for file in opened:
                file.close()
        assert str(caught.value).startswith("OpensEarly(...) opened 1 file(s) or socket(s)")
        assert "open them in open()" in str(caught.value)

    def test_a_sink_that_ignores_unknown_options(self, tmp_path: Path) -> None:
        class NoFinish(GoodSink):
            def __init__(self, name: str, options: Options) -> None:
                self.name, self.path, self.file = name, options.get_str("path"), None

        with pytest.raises(
            AssertionError, match=r"accepted the unknown option .*options\.finish\(\) last"
        ):
            check_sink(NoFinish, {"path": str(tmp_path / "x")})

    def test_a_bad_value_accepted(self, tmp_path: Path) -> None:
        """The author says a relative path must be refused; this sink takes it."""
        with pytest.raises(AssertionError, match=r"^GoodSink accepted \{'path': 'x'\}: raise"):
            check_sink(GoodSink, {"path": str(tmp_path / "y")}, bad=[{"path": "x"}])

    def test_a_sink_that_swallows_an_error_and_loses_the_batch(self, tmp_path: Path) -> None:
        class Swallows(GoodSink):
            def write(self, records: Sequence[Record]) -> None:
                # a failed write swallowed: the batch is lost, and the daemon would count it
                with contextlib.suppress(OSError):
                    Path("/nonexistent/dir/file").write_text("x")

        out = tmp_path / "lost.log"
        with pytest.raises(AssertionError) as caught:
            check_sink(Swallows, {"path": str(out)}, read=lambda: lines(out))
        assert str(caught.value).startswith("100 of 100 records are not in what read() returns")

    def test_an_error_outside_the_contract(self, tmp_path: Path) -> None:
        class Raises(GoodSink):
            def write(self, records: Sequence[Record]) -> None:
                raise ValueError("cannot encode")

        with pytest.raises(AssertionError) as caught:
            check_sink(Raises, {"path": str(tmp_path / "z")})
        assert str(caught.value).startswith("Raises.write() raised ValueError: cannot encode;")

    def test_a_sink_that_takes_the_batch_for_a_list(self, tmp_path: Path) -> None:
        """The daemon hands over a Sequence that is not a list; so does check_sink, so a sink
        that concatenates it as a list fails here, not in the daemon."""

        class ListOnly(GoodSink):
            def write(self, records: Sequence[Record]) -> None:
                super().write(records + [])  # type: ignore[operator]  # noqa: RUF005 - the mistake

        with pytest.raises(AssertionError) as caught:
            check_sink(ListOnly, {"path": str(tmp_path / "z")})
        assert str(caught.value).startswith("ListOnly.write() raised TypeError: unsupported")


class TestMakeRecords:
    """``make_records``: realistic records, hostile ones on request."""

    def test_plain(self) -> None:
        records = make_records(10)
        assert [r.message for r in records[:2]] == ["line 000000", "line 000001"]
        assert {r.severity for r in make_records(8)} == {
            "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"
        }  # fmt: skip
        assert len({r.msgid for r in records}) == 10

    def test_hostile_and_overridden(self) -> None:
        (record,) = make_records(1, unicode=True, controls=True, tag="build", host="ci")
        assert "日本" in record.message
        assert "\n" in record.message
        assert "\x1b" in record.message
        assert (record.tag, record.host) == ("build", "ci")


class TestCapturingSink:
    """``CapturingSink`` keeps what it was given and raises what it is told to."""

    def test_keeps_calls_and_records(self) -> None:
        sink = CapturingSink()
        sink.open()
        sink.write(make_records(3))
        sink.flush()
        assert sink.calls == ["open", "write", "flush"]
        assert [r.message for r in sink.records] == ["line 000000", "line 000001", "line 000002"]

    def test_injected_errors_then_normal_calls(self) -> None:
        sink = CapturingSink()
        sink.fail("write", RetryableSinkError("down"), times=2)
        sink.fail("flush", PermanentSinkError("never"))
        for _ in range(2):
            with pytest.raises(RetryableSinkError):
                sink.write(make_records(1))
        sink.write(make_records(1))
        with pytest.raises(PermanentSinkError):
            sink.flush()
        sink.flush()
        assert len(sink.records) == 1, "a write that raised kept nothing"

    def test_unknown_method_refused(self) -> None:
        with pytest.raises(ValueError, match="no sink method 'send'"):
            CapturingSink().fail("send", RetryableSinkError("x"))
