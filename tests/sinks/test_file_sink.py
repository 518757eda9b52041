"""The file sink: whole lines, modes, parent folders, rotation by rename, no symlinks."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from logfan.sinks.base import Options, Record, RetryableSinkError, SinkConfigError
from logfan.sinks.file import FileSink


def rec(message: str) -> Record:
    return Record(message=message, timestamp="2026-11-27T06:12:59.123Z", host="h", tag="t")


def sink(path: Path, **options: object) -> FileSink:
    return FileSink("f", Options("f", {"type": "file", "path": str(path), **options}))


class TestFileSink:
    """Appending batches to a file."""

    def test_writes_whole_formatted_lines_and_creates_parents(self, tmp_path: Path) -> None:
        """Parent folders are created 0750, the file 0640, each record one line."""
        path = tmp_path / "a" / "b" / "out.log"
        s = sink(path)
        s.open()
        s.write([rec("one"), rec("two")])
        s.flush()
        s.close()
        assert path.read_text() == (
            "2026-11-27T06:12:59.123Z h t: one\n2026-11-27T06:12:59.123Z h t: two\n"
        )
        assert path.stat().st_mode & 0o777 == 0o640
        assert path.parent.stat().st_mode & 0o777 == 0o750

    def test_configured_mode(self, tmp_path: Path) -> None:
        """`mode: 0600` creates the file 0600."""
        s = sink(tmp_path / "m.log", mode="0600")
        s.open()
        s.close()
        assert (tmp_path / "m.log").stat().st_mode & 0o777 == 0o600

    def test_control_characters_cannot_forge_lines(self, tmp_path: Path) -> None:
        """An embedded LF or ESC is escaped by default: one record, one line."""
        s = sink(tmp_path / "c.log", format="{message}")
        s.open()
        s.write([rec("evil\nFAKE root: login\x1b[2J")])
        s.close()
        assert (tmp_path / "c.log").read_text() == "evil\\nFAKE root: login\\x1b[2J\n"

    def test_reopens_after_rename_rotation(self, tmp_path: Path) -> None:
        """After a rename (logrotate `create`), the next batch goes to a new file."""
        path = tmp_path / "r.log"
        s = sink(path, format="{message}")
        s.open()
        s.write([rec("before")])
        path.rename(tmp_path / "r.log.1")
        s.write([rec("after")])
        s.close()
        assert (tmp_path / "r.log.1").read_text() == "before\n"
        assert path.read_text() == "after\n"

    def test_copytruncate_keeps_appending_at_the_start(self, tmp_path: Path) -> None:
        """O_APPEND: after truncation the next line lands at offset 0, with no hole."""
        path = tmp_path / "t.log"
        s = sink(path, format="{message}")
        s.open()
        s.write([rec("a long line before truncation")])
        os.truncate(path, 0)
        s.write([rec("after")])
        s.close()
        assert path.read_bytes() == b"after\n"

    def test_refuses_to_write_through_a_symlink(self, tmp_path: Path) -> None:
        """A symlink at the path is refused with a clear, retryable error."""
        target = tmp_path / "target"
        target.write_text("")
        (tmp_path / "link.log").symlink_to(target)
        s = sink(tmp_path / "link.log")
        with pytest.raises(RetryableSinkError, match="symlink"):
            s.open()
        assert target.read_text() == ""

    def test_bad_options(self, tmp_path: Path) -> None:
        """Missing path, bad mode, unknown option: SinkConfigError naming the option."""
        with pytest.raises(SinkConfigError) as missing:
            FileSink("f", Options("f", {"type": "file"}))
        assert missing.value.key == "path"
        with pytest.raises(SinkConfigError) as mode:
            sink(tmp_path / "x", mode="0999")
        assert mode.value.key == "mode"
        with pytest.raises(SinkConfigError) as unknown:
            sink(tmp_path / "x", rotate_daily=True)
        assert unknown.value.key == "rotate_daily"
        assert "valid options are: control_chars, format, fsync, mode, path" in str(unknown.value)
