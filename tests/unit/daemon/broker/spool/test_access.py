"""Who may use a spool: write access checked before connecting; one daemon per spool."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from logfan_testkit import as_nobody

from logfan.daemon.broker.spool.access import DAEMON_LOCK, hold, unusable


@pytest.fixture
def public() -> Iterator[Path]:
    """A folder other users may look into (pytest's own tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="logfan-access-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def spool(public: Path) -> Path:
    """A spool as the daemon leaves it, owned by root, readable but not writable by others."""
    root = public / "spool"
    for sub in ("control", "queues/logfan.all", "inflight"):
        (root / sub).mkdir(parents=True)
    for folder in (root, *root.rglob("*")):
        folder.chmod(0o755)
    return root


class TestUnusable:
    """``unusable``: the first spool folder this process may not write in."""

    def test_another_user_is_told_which_folder(self, spool: Path) -> None:
        """As nobody, the spool itself is the first folder without write access."""
        assert as_nobody(lambda: unusable(spool))[0] == str(spool)

    def test_the_owner_may_use_it(self, spool: Path) -> None:
        """The user who owns the spool may use it: None."""
        assert unusable(spool) is None

    def test_a_spool_to_be_made_needs_a_writable_parent(self, public: Path) -> None:
        """A spool that does not exist yet: its nearest existing parent must be writable."""
        assert as_nobody(lambda: unusable(public / "new" / "spool"))[0] == str(public)

    def test_a_folder_it_cannot_look_into_is_named(self, spool: Path) -> None:
        """A spool inside a folder others may not enter (0700): that folder is named."""
        spool.chmod(0o700)
        assert as_nobody(lambda: unusable(spool / "deeper"))[0] == str(spool / "deeper")


class TestHold:
    """``hold``: one daemon per spool, the second one told which pid holds it."""

    def test_second_holder_is_refused_with_the_pid(self, tmp_path: Path) -> None:
        """The first hold writes its pid; a second one (even in this process) is refused."""
        fd = hold(tmp_path / "spool")
        try:
            assert (tmp_path / "spool" / DAEMON_LOCK).read_text() == f"{os.getpid()}\n"
            with pytest.raises(BlockingIOError) as caught:
                hold(tmp_path / "spool")
            assert caught.value.errno == errno.EWOULDBLOCK
            assert caught.value.strerror == (
                f"another logfan run (pid {os.getpid()}) is using the spool {tmp_path / 'spool'}"
            )
        finally:
            os.close(fd)

    def test_released_when_closed(self, tmp_path: Path) -> None:
        """Once the holder's descriptor is closed (it exited), the spool may be held again."""
        os.close(hold(tmp_path / "spool"))
        os.close(hold(tmp_path / "spool"))
