"""Watches the config file's folder, so edits (in place or by rename, as editors do) reload it."""

from __future__ import annotations

import os
from collections.abc import Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

#: event types that can mean "the config has new content".
_CHANGES = frozenset({"modified", "created", "moved", "closed"})


class ConfigWatcher(FileSystemEventHandler):
    """Calls ``on_change`` when the config file is written, replaced or moved into place.

    The folder is watched, not the file: editors and ``sed -i`` replace the file by a rename,
    which a watch on the old file would never see.
    """

    def __init__(self, path: str, on_change: Callable[[], None]) -> None:
        self.path = os.path.realpath(path)
        self.on_change = on_change
        self._observer = Observer()
        self._observer.daemon = True
        self._observer.schedule(self, os.path.dirname(self.path), recursive=False)

    def start(self) -> None:
        """Start watching (in watchdog's own thread)."""
        self._observer.start()

    def stop(self) -> None:
        """Stop watching."""
        self._observer.stop()
        self._observer.join(5)

    def on_any_event(self, event: FileSystemEvent) -> None:
        """Filter the folder's events down to the config file's."""
        if event.event_type not in _CHANGES or event.is_directory:
            return
        paths = {os.fsdecode(event.src_path), os.fsdecode(getattr(event, "dest_path", "") or "")}
        if self.path in {os.path.realpath(p) for p in paths if p}:
            self.on_change()
