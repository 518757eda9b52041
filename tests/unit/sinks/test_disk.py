"""Making a folder's changes durable: fsync of a real folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from logfan.sinks.disk import fsync_dir


class TestFsyncDir:
    """``fsync_dir``: fsync a folder, refuse anything else."""

    def test_folder(self, tmp_path: Path) -> None:
        """A folder (as a Path or a str) is synced without an error."""
        (tmp_path / "new.log").write_text("x\n")
        fsync_dir(tmp_path)
        fsync_dir(str(tmp_path))

    def test_empty_path_is_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``""`` (the folder of a bare file name) is the working directory."""
        monkeypatch.chdir(tmp_path)
        fsync_dir("")

    def test_missing_folder(self, tmp_path: Path) -> None:
        """A folder that does not exist: FileNotFoundError."""
        with pytest.raises(FileNotFoundError):
            fsync_dir(tmp_path / "absent")

    def test_regular_file(self, tmp_path: Path) -> None:
        """A regular file is not a folder: NotADirectoryError."""
        path = tmp_path / "file.log"
        path.write_text("x\n")
        with pytest.raises(NotADirectoryError):
            fsync_dir(path)
