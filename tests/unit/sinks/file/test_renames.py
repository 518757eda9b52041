"""The file sink under renames: logrotate and `tail -F` racing its writes (inotify on the file)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from filekit import rec
from logfan_testkit import read_lines, tail_f, wait_for

from logfan.sinks.base import Options
from logfan.sinks.file import FileSink


class RacedSink(FileSink):
    """A file sink where ``act``, once set, runs once in the worst place: after the sink has
    checked the path and before its write (or, with ``after_write``, right after the write)."""

    def __init__(self, path: Path, after_write: bool = False) -> None:
        options = {"type": "file", "path": str(path), "format": "{message}"}
        super().__init__("f", Options("f", options))
        self.act: Callable[[], object] | None = None
        self.after_write = after_write

    def _append(self, fd: int, data: bytes, start: int) -> None:
        act, self.act = self.act, None
        if act is not None and not self.after_write:
            act()
        super()._append(fd, data, start)
        if act is not None and self.after_write:
            act()


@contextlib.contextmanager
def tail_follow(path: Path) -> Iterator[Path]:
    """GNU `tail -n +1 -F path` running and watching the file, its output in the yielded file."""
    out = path.with_name("tail.out")
    with out.open("wb") as sink_, open(os.devnull, "wb") as err:
        tail = tail_f(path, sink_, err)
    try:
        yield out
    finally:
        tail.terminate()
        tail.wait(10)


class TestRenamedUnderAWrite:
    """logrotate renames (or someone deletes) the file between the sink's check and its write.

    GNU `tail -F` leaves a file as soon as it sees it renamed, without reading what is written to
    it later; so a batch that lands in the renamed file is never shown. The sink cuts it off that
    file again and writes it to the new one; a batch written before the rename stays where it is.
    """

    def run(
        self, tmp_path: Path, act: Callable[[], object], after_write: bool = False
    ) -> list[str]:
        """Write before / during (raced by ``act``) / after; return what `tail -F` printed."""
        path = tmp_path / "out.log"
        s = RacedSink(path, after_write)
        s.open()
        with tail_follow(path) as printed:
            # Printed after tail watched the file: tail has set itself up and is reading events.
            s.write([rec("before")])
            wait_for(lambda: read_lines(printed) == ["before"], 20, "tail to print `before`")
            s.act = act
            s.write([rec("during")])
            s.write([rec("after")])
            wait_for(lambda: read_lines(printed)[-1:] == ["after"], 20, "tail to print `after`")
        s.close()
        assert s.act is None
        return read_lines(printed)

    def test_renamed_before_the_write_moves_the_batch_to_the_new_file(self, tmp_path: Path) -> None:
        """Renamed after the check: the batch ends in the new file, tail prints every line once."""
        path, rotated = tmp_path / "out.log", tmp_path / "out.log.1"
        printed = self.run(tmp_path, lambda: path.rename(rotated))
        assert printed == ["before", "during", "after"]
        assert (rotated.read_text(), path.read_text()) == ("before\n", "during\nafter\n")

    def test_deleted_before_the_write_loses_nothing(self, tmp_path: Path) -> None:
        """Deleted after the check: the batch would be written into a deleted file and lost."""
        path = tmp_path / "out.log"
        printed = self.run(tmp_path, path.unlink)
        assert printed == ["before", "during", "after"]
        assert path.read_text() == "during\nafter\n"

    def test_renamed_after_the_write_keeps_the_batch_where_tail_read_it(
        self, tmp_path: Path
    ) -> None:
        """Renamed after the write: tail read the batch from the old file; it stays there."""
        path, rotated = tmp_path / "out.log", tmp_path / "out.log.1"
        printed = self.run(tmp_path, lambda: path.rename(rotated), after_write=True)
        assert printed == ["before", "during", "after"]
        assert (rotated.read_text(), path.read_text()) == ("before\nduring\n", "after\n")

    def test_a_change_of_mode_moves_nothing(self, tmp_path: Path) -> None:
        """chmod (an attribute event like a delete) while the path still names the file."""
        path = tmp_path / "out.log"
        printed = self.run(tmp_path, lambda: path.chmod(0o600))
        assert printed == ["before", "during", "after"]
        assert path.read_text() == "before\nduring\nafter\n"
