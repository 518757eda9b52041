"""The file sink's built-in rotation: shift, rename, gzip without losing a file."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from filekit import lines, sink, text

from logfan.sinks.base import RetryableSinkError, SinkConfigError
from logfan.sinks.file.rotation import RotatePolicy, compress_file


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
