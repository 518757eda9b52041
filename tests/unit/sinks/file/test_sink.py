"""The file sink: whole lines, mode/owner/group, reopen, built-in rotation, no symlinks."""

from __future__ import annotations

import contextlib
import grp
import gzip
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from logfan_testkit import read_lines, tail_f, wait_for

from logfan.sinks.base import Options, Record, RetryableSinkError, SinkConfigError
from logfan.sinks.file import FileSink
from logfan.sinks.file.rotation import RotatePolicy, compress_file

#: the unprivileged group paired with `nobody` (Debian: nogroup; elsewhere: nobody).
NOGROUP = "nogroup"


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


def lines(n: int, start: int = 0) -> list[Record]:
    """``n`` records whose formatted lines (`{message}`) are 10 bytes each: ``line-0000\\n``."""
    return [rec(f"line-{i:04d}") for i in range(start, start + n)]


def text(first: int, count: int) -> str:
    return "".join(f"line-{i:04d}\n" for i in range(first, first + count))


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


class TestBuiltinRotation:
    """`rotate: {max_bytes, keep, compress}`: rotation by size, done by the sink itself."""

    def test_rotates_before_a_batch_would_pass_max_bytes(self, tmp_path: Path) -> None:
        """Three 30-byte batches fit in 100 bytes; the fourth goes to a fresh file."""
        path = tmp_path / "s.log"
        s = sink(path, format="{message}", rotate={"max_bytes": 100})
        for batch in range(4):
            s.write(lines(3, batch * 3))
        s.close()
        assert (tmp_path / "s.log.1").read_text() == text(0, 9)
        assert path.read_text() == text(9, 3)

    def test_keeps_only_keep_files_newest_first(self, tmp_path: Path) -> None:
        """`keep: 2` leaves path, path.1 (newer) and path.2 (older); older ones are deleted."""
        path = tmp_path / "k.log"
        s = sink(path, format="{message}", rotate={"max_bytes": 20, "keep": 2})
        for batch in range(5):
            s.write(lines(2, batch * 2))
        s.close()
        assert sorted(p.name for p in tmp_path.iterdir()) == ["k.log", "k.log.1", "k.log.2"]
        assert [(tmp_path / n).read_text() for n in ("k.log.2", "k.log.1", "k.log")] == [
            text(4, 2),
            text(6, 2),
            text(8, 2),
        ]

    def test_a_batch_is_never_split_even_when_larger_than_max_bytes(self, tmp_path: Path) -> None:
        """A batch bigger than max_bytes goes whole into a fresh file; an empty file is kept."""
        path = tmp_path / "b.log"
        s = sink(path, format="{message}", rotate={"max_bytes": "25B"})
        s.write(lines(5))
        s.write(lines(1, 5))
        s.close()
        assert (tmp_path / "b.log.1").read_text() == text(0, 5)
        assert path.read_text() == text(5, 1)
        assert not (tmp_path / "b.log.2").exists()

    def test_compress_gzips_rotated_files_with_the_same_mode(self, tmp_path: Path) -> None:
        """With compress, rotated files are path.N.gz, same mode as the log, nothing left over."""
        path = tmp_path / "z.log"
        s = sink(path, format="{message}", mode="0600", rotate={"max_bytes": 20, "compress": True})
        for batch in range(3):
            s.write(lines(2, batch * 2))
        assert s.rotator is not None
        s.rotator.wait()
        s.close()
        names = sorted(p.name for p in tmp_path.iterdir())
        assert names == ["z.log", "z.log.1.gz", "z.log.2.gz"]
        assert gzip.decompress((tmp_path / "z.log.2.gz").read_bytes()).decode() == text(0, 2)
        assert gzip.decompress((tmp_path / "z.log.1.gz").read_bytes()).decode() == text(2, 2)
        assert (tmp_path / "z.log.1.gz").stat().st_mode & 0o777 == 0o600

    def test_a_failed_compression_keeps_the_plain_file_and_is_reported(
        self, tmp_path: Path
    ) -> None:
        """If the .gz cannot be made, path.1 stays whole and the next rotation says why, once."""
        path = tmp_path / "f.log"
        blocker = tmp_path / "f.log.1.gz.tmp"
        blocker.mkdir()  # compress_file cannot write its temporary file
        s = sink(path, format="{message}", rotate={"max_bytes": 20, "compress": True})
        s.write(lines(2))
        s.write(lines(2, 2))  # rotates; the compression fails in the background
        with pytest.raises(RetryableSinkError, match=r"cannot rotate .*f\.log\.1\.gz\.tmp: Is a"):
            s.write(lines(2, 4))
        assert (tmp_path / "f.log.1").read_text() == text(0, 2)
        blocker.rmdir()
        s.write(lines(2, 4))  # the retry rotates: the plain file is shifted, nothing lost
        assert s.rotator is not None
        s.rotator.wait()
        s.close()
        assert (tmp_path / "f.log.2").read_text() == text(0, 2)
        assert gzip.decompress((tmp_path / "f.log.1.gz").read_bytes()).decode() == text(2, 2)
        assert path.read_text() == text(4, 2)

    def test_the_new_file_gets_mode_and_owner(self, tmp_path: Path) -> None:
        """After a rotation the new file is created like the first one: mode and owner."""
        path = tmp_path / "m.log"
        s = sink(path, format="{message}", mode="0604", owner=4242, rotate={"max_bytes": 20})
        s.write(lines(2))
        s.write(lines(2, 2))
        s.close()
        assert (path.stat().st_mode & 0o777, path.stat().st_uid) == (0o604, 4242)


class TestCompressFile:
    """compress_file: at every instant the plain file or a whole .gz exists."""

    def test_replaces_the_file_by_its_gzip(self, tmp_path: Path) -> None:
        """The .gz holds the same bytes, keeps mode and owner; the plain file and .tmp are gone."""
        src = tmp_path / "a.log.1"
        src.write_bytes(b"x" * 100_000 + b"\n")
        src.chmod(0o640)
        os.chown(src, 4242, 4343)
        dst = Path(compress_file(str(src)))
        assert dst == tmp_path / "a.log.1.gz"
        assert gzip.decompress(dst.read_bytes()) == b"x" * 100_000 + b"\n"
        st = dst.stat()
        assert (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 4242, 4343)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["a.log.1.gz"]

    def test_a_failure_before_the_rename_keeps_the_plain_file(self, tmp_path: Path) -> None:
        """If writing the .gz fails, the plain file is untouched (a crash is the same case)."""
        src = tmp_path / "b.log.1"
        src.write_text("keep me\n")
        (tmp_path / "b.log.1.gz.tmp").symlink_to(tmp_path / "elsewhere")  # refused: O_NOFOLLOW
        with pytest.raises(OSError, match="Too many levels of symbolic links"):
            compress_file(str(src))
        assert src.read_text() == "keep me\n"
        assert not (tmp_path / "b.log.1.gz").exists()
        assert not (tmp_path / "elsewhere").exists()


class TestRotateOption:
    """`rotate:` is checked when the sink is built; each error names the key, quotes the value."""

    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            ({"max_bytes": 1000}, RotatePolicy(1000, 5, False)),
            ({"max_bytes": "10MiB", "keep": 3}, RotatePolicy(10 * 2**20, 3, False)),
            ({"max_bytes": "1GB", "compress": True}, RotatePolicy(10**9, 5, True)),
        ],
    )
    def test_valid_values(self, tmp_path: Path, value: dict[str, object], expected: object) -> None:
        """Sizes in bytes or with a unit (KB, KiB, MB, MiB, GB, GiB); keep 5, no gzip by default."""
        s = sink(tmp_path / "v.log", rotate=value)
        assert s.rotator is not None
        assert s.rotator.policy == expected

    @pytest.mark.parametrize(
        ("value", "key", "reason"),
        [
            (
                "daily",
                "rotate",
                "expected a mapping like {max_bytes: 100MiB, keep: 5, compress: true}, got 'daily'",
            ),
            (
                {"keep": 3},
                "rotate.max_bytes",
                "this option is required, as in {max_bytes: 100MiB, keep: 5, compress: true}",
            ),
            (
                {"max_bytes": "10 parsecs"},
                "rotate.max_bytes",
                "expected a size like 100MiB, 1GB or a number of bytes, got '10 parsecs'",
            ),
            (
                {"max_bytes": 0},
                "rotate.max_bytes",
                "expected a size like 100MiB, 1GB or a number of bytes, got 0",
            ),
            (
                {"max_bytes": 10, "keep": 0},
                "rotate.keep",
                "expected a whole number of rotated files from 1 to 1000, got 0",
            ),
            (
                {"max_bytes": 10, "keep": "5"},
                "rotate.keep",
                "expected a whole number of rotated files from 1 to 1000, got '5'",
            ),
            (
                {"max_bytes": 10, "compress": "yes"},
                "rotate.compress",
                "expected true or false, got 'yes'",
            ),
            (
                {"max_bytes": 10, "when": "daily"},
                "rotate.when",
                "unknown option; valid options are: compress, keep, max_bytes",
            ),
        ],
    )
    def test_bad_values(self, tmp_path: Path, value: object, key: str, reason: str) -> None:
        """Each bad value is refused with the option's name and the value quoted."""
        with pytest.raises(SinkConfigError) as bad:
            sink(tmp_path / "x.log", rotate=value)
        assert (bad.value.key, bad.value.reason) == (key, reason)
