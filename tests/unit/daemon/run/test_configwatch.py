"""The config watcher on a real folder: writes, renames and moves of the config reload it."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from watchdog.events import FileSystemEvent

from logfan.daemon.run.configwatch import ConfigWatcher

CONFIG = "sinks:\n  c:\n    type: console\n"


class RecordingWatcher(ConfigWatcher):
    """A ConfigWatcher that also notes, for each event of the folder, whether it reloaded."""

    def __init__(self, path: str) -> None:
        self.changed = threading.Event()
        self.calls = 0
        #: (the event's paths, whether it called on_change), in the order they came
        self.seen: list[tuple[set[str], bool]] = []
        super().__init__(path, self._on_change)

    def _on_change(self) -> None:
        self.calls += 1
        self.changed.set()

    def on_any_event(self, event: FileSystemEvent) -> None:
        before = self.calls
        super().on_any_event(event)
        paths = {os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")}
        self.seen.append(({os.path.basename(p) for p in paths if p}, self.calls > before))


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config file in a folder of its own."""
    folder = tmp_path / "etc"
    folder.mkdir()
    path = folder / "logfan.yaml"
    path.write_text(CONFIG)
    return path


@pytest.fixture
def watcher(config: Path) -> Iterator[RecordingWatcher]:
    """A started watcher of ``config``; stopped after the test."""
    watcher = RecordingWatcher(str(config))
    watcher.start()
    yield watcher
    watcher.stop()


def reloaded(watcher: RecordingWatcher) -> bool:
    """Wait (up to 10 s) for on_change."""
    return watcher.changed.wait(10)


class TestConfigWatcher:
    """``ConfigWatcher``: on_change for the config file's new content, not for other files."""

    def test_in_place_write(self, config: Path, watcher: RecordingWatcher) -> None:
        """Writing the file in place calls on_change."""
        with config.open("a") as f:
            f.write("# edited\n")
        assert reloaded(watcher)

    def test_rename_over_it(self, config: Path, watcher: RecordingWatcher) -> None:
        """A new file renamed over the config (editors, ``sed -i``) calls on_change."""
        new = config.with_name(".logfan.yaml.swp")
        new.write_text(CONFIG + "# edited\n")
        os.replace(new, config)
        assert reloaded(watcher)

    def test_move_into_place(self, config: Path, watcher: RecordingWatcher, tmp_path: Path) -> None:
        """A file moved in from another folder (deploy tools) calls on_change."""
        staged = tmp_path / "staging" / "logfan.yaml"
        staged.parent.mkdir()
        staged.write_text(CONFIG + "# deployed\n")
        config.unlink()
        watcher.changed.clear()
        os.rename(staged, config)
        assert reloaded(watcher)

    def test_other_files_and_reads_do_not_reload(
        self, config: Path, watcher: RecordingWatcher
    ) -> None:
        """Writing another file of the folder, or reading the config, calls nothing.

        The folder's events come in order: once the final write of the config has called
        on_change, every earlier event was handled, and none of those may have called it.
        """
        (config.parent / "other.yaml").write_text("x: 1\n")
        with (config.parent / "notes.txt").open("a") as f:
            f.write("note\n")
        assert config.read_text() == CONFIG  # what a reload does: must not trigger another
        with config.open("a") as f:
            f.write("# edited\n")
        assert reloaded(watcher)
        first = next(i for i, (_, called) in enumerate(watcher.seen) if called)
        before = watcher.seen[:first]
        assert any("other.yaml" in paths for paths, _ in before), "the watcher saw the others"
        assert any("notes.txt" in paths for paths, _ in before)
        assert not any(called for _, called in before)

    def test_stopped_watcher_calls_nothing(self, config: Path) -> None:
        """After stop() no change calls on_change."""
        watcher = RecordingWatcher(str(config))
        watcher.start()
        watcher.stop()
        config.write_text(CONFIG + "# edited\n")
        assert not watcher.changed.wait(1)
