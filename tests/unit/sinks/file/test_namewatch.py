"""inotify on an open file: did it lose its name before the last write, or after?"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from logfan.sinks.file.namewatch import NameWatch


@pytest.fixture
def opened(tmp_path: Path) -> Iterator[tuple[Path, int, NameWatch]]:
    """A file open for appending, and a watch on it."""
    path = tmp_path / "app.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    watch = NameWatch.of(fd)
    assert watch is not None, "inotify is available on Linux"
    yield path, fd, watch
    watch.close()
    os.close(fd)


class TestNameWatch:
    """The order of a rename (or delete) and a write, as tail -F sees them."""

    def test_plain_writes_never_count(self, opened: tuple[Path, int, NameWatch]) -> None:
        """Writes to a file that keeps its name: False, every time."""
        _, fd, watch = opened
        for _ in range(3):
            os.write(fd, b"line\n")
            assert not watch.wrote_after_losing_name()

    def test_rename_then_write(self, opened: tuple[Path, int, NameWatch]) -> None:
        """Renamed away, then written: True (tail -F has left the file)."""
        path, fd, watch = opened
        path.rename(path.with_name("app.log.1"))
        os.write(fd, b"late\n")
        assert watch.wrote_after_losing_name()

    def test_write_then_rename(self, opened: tuple[Path, int, NameWatch]) -> None:
        """Written, then renamed: False (tail -F read the write before the rename)."""
        path, fd, watch = opened
        os.write(fd, b"in time\n")
        path.rename(path.with_name("app.log.1"))
        assert not watch.wrote_after_losing_name()

    def test_delete_then_write(self, opened: tuple[Path, int, NameWatch]) -> None:
        """Deleted, then written: True (a change of the link count is a name event)."""
        path, fd, watch = opened
        path.unlink()
        os.write(fd, b"into nothing\n")
        assert watch.wrote_after_losing_name()

    def test_events_are_read_once(self, opened: tuple[Path, int, NameWatch]) -> None:
        """A rename and a write seen once are not seen again by the next call."""
        path, fd, watch = opened
        path.rename(path.with_name("app.log.1"))
        os.write(fd, b"late\n")
        assert watch.wrote_after_losing_name()
        assert not watch.wrote_after_losing_name()
