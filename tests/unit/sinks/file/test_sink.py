"""The file sink: whole lines, mode/owner/group, reopen, no symlinks."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from filekit import rec, sink
from hypothesis import given, settings
from hypothesis import strategies as st

from logfan.sinks.base import Options, RetryableSinkError, SinkConfigError
from logfan.sinks.file import FileSink

NOGROUP = "nogroup"


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
        valid = "control_chars, format, fsync, group, mode, owner, path, rotate"
        assert f"valid options are: {valid}" in str(unknown.value)

    def test_mode_is_exact_whatever_the_umask(self, tmp_path: Path) -> None:
        """A file the sink creates gets `mode` itself, even under a umask that would mask it."""
        old = os.umask(0o077)
        try:
            s = sink(tmp_path / "u.log", mode="0644")
            s.open()
            s.close()
        finally:
            os.umask(old)
        assert (tmp_path / "u.log").stat().st_mode & 0o777 == 0o644

    def test_an_existing_file_keeps_its_mode(self, tmp_path: Path) -> None:
        """`mode` applies on creation only: a file made by someone else is left as it is."""
        path = tmp_path / "e.log"
        path.write_text("old\n")
        path.chmod(0o600)
        s = sink(path, format="{message}")
        s.write([rec("new")])
        s.close()
        assert path.stat().st_mode & 0o777 == 0o600
        assert path.read_text() == "old\nnew\n"

    def test_a_partly_written_batch_is_cut_off_again(self, tmp_path: Path) -> None:
        """A write that fails half-way (file size limit, disk full) leaves no torn line behind."""
        path = tmp_path / "p.log"
        done = subprocess.run(
            [sys.executable, "-c", PARTIAL_WRITE, str(path)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "cannot write to" in done.stdout
        assert path.read_text() == "first\n"


PARTIAL_WRITE = """
import resource, signal, sys
from logfan.sinks.base import Options, Record, RetryableSinkError
from logfan.sinks.file import FileSink
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
s = FileSink("f", Options("f", {"type": "file", "path": sys.argv[1], "format": "{message}"}))
s.write([Record("first", "t")])
resource.setrlimit(resource.RLIMIT_FSIZE, (20, resource.RLIM_INFINITY))
try:
    s.write([Record("x" * 9, "t"), Record("y" * 9, "t")])
except RetryableSinkError as exc:
    print(exc)
"""


class TestReopen:
    """`reopen()`, which the daemon calls after SIGHUP, and the inode check before each batch."""

    def test_reopen_lets_go_of_a_renamed_file_at_once(self, tmp_path: Path) -> None:
        """After a rename, reopen() creates the path again and closes the old file right away."""
        path = tmp_path / "r.log"
        s = sink(path, format="{message}")
        s.write([rec("before")])
        path.rename(tmp_path / "r.log.1")
        s.reopen()
        held = {os.path.realpath(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")}
        assert path.exists()
        assert str(tmp_path / "r.log.1") not in held
        s.write([rec("after")])
        s.close()
        assert (path.read_text(), (tmp_path / "r.log.1").read_text()) == ("after\n", "before\n")

    def test_reopen_of_an_unmoved_file_appends_to_it(self, tmp_path: Path) -> None:
        """reopen() on a file still in place keeps appending to the same file."""
        path = tmp_path / "same.log"
        s = sink(path, format="{message}")
        s.write([rec("one")])
        s.reopen()
        s.write([rec("two")])
        s.close()
        assert path.read_text() == "one\ntwo\n"

    def test_a_deleted_file_is_created_again(self, tmp_path: Path) -> None:
        """Deleting the file (logrotate without `create`, or rm) makes the next batch create it."""
        path = tmp_path / "d.log"
        s = sink(path, format="{message}", mode="0600")
        s.write([rec("gone")])
        path.unlink()
        s.write([rec("back")])
        s.close()
        assert path.read_text() == "back\n"
        assert path.stat().st_mode & 0o777 == 0o600


class TestOwnership:
    """`owner` and `group`: names or numbers, applied to the files the sink creates."""

    def test_names_are_applied_on_creation(self, tmp_path: Path) -> None:
        """As root, `owner: nobody` and `group: nogroup` give the new file that owner and group."""
        path = tmp_path / "o.log"
        s = sink(path, owner="nobody", group=NOGROUP)
        s.open()
        s.close()
        st = path.stat()
        assert (st.st_uid, st.st_gid) == (
            pwd.getpwnam("nobody").pw_uid,
            grp.getgrnam(NOGROUP).gr_gid,
        )

    def test_numbers_are_taken_as_they_are(self, tmp_path: Path) -> None:
        """Numbers (YAML ints or digit strings) need no account on this host."""
        path = tmp_path / "n.log"
        s = sink(path, owner=4242, group="4343")
        s.open()
        s.close()
        assert (path.stat().st_uid, path.stat().st_gid) == (4242, 4343)

    def test_rotated_and_recreated_files_get_them_too(self, tmp_path: Path) -> None:
        """A file re-created after a rename gets the owner too, not the daemon's own user."""
        path = tmp_path / "rc.log"
        s = sink(path, owner=4242, format="{message}")
        s.write([rec("one")])
        path.rename(tmp_path / "rc.log.1")
        s.write([rec("two")])
        s.close()
        assert path.stat().st_uid == 4242

    def test_an_existing_file_keeps_its_owner(self, tmp_path: Path) -> None:
        """Ownership is set on creation only, as `create` in logrotate would."""
        path = tmp_path / "x.log"
        path.write_text("")
        s = sink(path, owner=4242)
        s.open()
        s.close()
        assert path.stat().st_uid == 0

    def test_refused_chown_is_a_clear_error_and_leaves_no_file(self, tmp_path: Path) -> None:
        """Without the right to chown (not root), open() fails saying so, and removes the file."""
        folder = Path(tempfile.mkdtemp(prefix="logfan-owner-"))
        try:
            folder.chmod(0o777)
            read, write = os.pipe()
            pid = os.fork()
            if pid == 0:  # the child drops to nobody and tries; it reports through the pipe
                os.close(read)
                os.setgroups([])
                os.setgid(grp.getgrnam(NOGROUP).gr_gid)
                os.setuid(pwd.getpwnam("nobody").pw_uid)
                try:
                    sink(folder / "c.log", owner="root").open()
                    message = "opened"
                except RetryableSinkError as exc:
                    message = str(exc)
                os.write(write, message.encode())
                os._exit(0)
            os.close(write)
            with os.fdopen(read, "rb") as pipe:
                message = pipe.read().decode()
            os.waitpid(pid, 0)
            assert "cannot give the new file mode 0640, owner 0, group -" in message
            assert "Operation not permitted" in message
            assert not (folder / "c.log").exists()
        finally:
            shutil.rmtree(folder)

    @pytest.mark.parametrize(
        ("key", "value", "reason"),
        [
            ("owner", "no-such-user-xyz", "no user named 'no-such-user-xyz' on this host"),
            ("group", "no-such-group-xyz", "no group named 'no-such-group-xyz' on this host"),
            ("owner", True, "expected a user name or number, got True"),
            ("group", -1, "expected a group name or number, got -1"),
            ("owner", "", "expected a user name or number, got ''"),
            ("owner", 2**32 - 1, "expected a user name or number, got 4294967295"),
            ("group", "a\0b", "no group named 'a\\x00b' on this host"),
        ],
    )
    def test_bad_values_name_the_option_and_quote_the_value(
        self, tmp_path: Path, key: str, value: object, reason: str
    ) -> None:
        """An unknown name or a wrong type is refused when the sink is built."""
        with pytest.raises(SinkConfigError) as bad:
            sink(tmp_path / "b.log", **{key: value})
        assert (bad.value.key, bad.value.reason) == (key, reason)


class TestOptionsProperties:
    """Any value for owner, group or rotate: a sink or a SinkConfigError, nothing else."""

    @settings(max_examples=300, deadline=None)
    @given(
        key=st.sampled_from(["owner", "group", "rotate"]),
        value=st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=12),
            lambda c: (
                st.lists(c, max_size=3)
                | st.dictionaries(st.sampled_from(["max_bytes", "keep", "compress", "x"]), c)
            ),
            max_leaves=8,
        ),
    )
    def test_only_sink_config_errors(self, key: str, value: object) -> None:
        """Hypothesis: every value is taken or refused with SinkConfigError."""
        with contextlib.suppress(SinkConfigError):
            FileSink("f", Options("f", {"type": "file", "path": "/tmp/x", key: value}))
