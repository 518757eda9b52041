"""The `logfan` command in-process: exit statuses, one-line errors, no traceback for a mistake."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from logfan_testkit import as_nobody

from logfan.daemon.cli import main


def good_config(tmp_path: Path) -> Path:
    path = tmp_path / "logfan.yaml"
    path.write_text(
        f"broker: {{url: 'filesystem://{tmp_path}/spool'}}\n"
        f"sinks:\n  all: {{type: file, path: '{tmp_path}/all.log'}}\n"
    )
    return path


class TestCheck:
    """`logfan check`: exit 0 with a summary, or exit 1 with FILE:LINE: key: reason."""

    def test_valid(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A valid config: exit 0, one line naming the sinks."""
        path = good_config(tmp_path)
        assert main(["check", "-c", str(path)]) == 0
        assert capsys.readouterr().out == f"{path}: OK: 1 sink(s): all (file)\n"

    def test_invalid(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """An invalid value: exit 1, one line on stderr with file, line and key."""
        path = good_config(tmp_path)
        path.write_text(path.read_text() + "daemon: {host: 'no spaces'}\n")
        assert main(["check", "-c", str(path)]) == 1
        err = capsys.readouterr().err
        assert err == (
            f"logfan check: {path}:4: daemon.host: expected letters, digits, '_' or '-', "
            "got 'no spaces'\n"
        )

    def test_missing_file(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """A config that does not exist: exit 1, the reason, no traceback."""
        assert main(["check", "-c", str(tmp_path / "nope.yaml")]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"logfan check: {tmp_path / 'nope.yaml'}: cannot read")
        assert "Traceback" not in err

    def test_probe_on_the_embedded_broker(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--probe also tries the broker and each sink, one line each."""
        path = good_config(tmp_path)
        assert main(["check", "--probe", "-c", str(path)]) == 0
        out = capsys.readouterr().out.splitlines()
        assert out[1:] == [f"broker filesystem://{tmp_path}/spool: OK", "sink all (file): OK"]


class TestEmitArguments:
    """`logfan emit` refuses bad arguments before it connects to anything."""

    @pytest.mark.parametrize(
        ("argv", "reason"),
        [
            (["-p", "loud", "x"], "-p: unknown severity 'loud'"),
            (["-p", "³", "x"], "-p: unknown severity '³'"),
            (["--max-line-bytes", "10", "x"], "--max-line-bytes: expected at least 64, got 10"),
            (["--retry-for", "-1", "x"], "--retry-for: expected a number of seconds >= 0"),
            (["-u", "redis://h", "x"], "--url: unsupported broker URL 'redis://h'"),
            (["--plain", "-t", "t" * 256, "x"], "-t: with --plain the tag is the AMQP app_id"),
        ],
    )
    def test_refused(
        self, tmp_path: Path, argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 1 and one line saying which argument is wrong."""
        path = good_config(tmp_path)
        assert main(["emit", "-c", str(path), *argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"logfan emit: {reason}"), err
        assert len(err.splitlines()) == 1


class TestTailArguments:
    """`logfan tail` refuses bad arguments before it connects to anything."""

    @pytest.mark.parametrize(
        ("argv", "reason"),
        [
            (["--format", "{nope}"], "--format: unknown placeholder {nope} in '{nope}'"),
            (["--format", "{message!r}"], "--format: placeholder {message} in '{message!r}' takes"),
            (["-n", "0"], "-n: expected a number of lines >= 1, got 0"),
            (["--buffer", "0"], "--buffer: expected a number of messages >= 1, got 0"),
        ],
    )
    def test_refused(
        self, tmp_path: Path, argv: list[str], reason: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Exit 1 and one line saying which argument is wrong; no spool is made."""
        path = good_config(tmp_path)
        assert main(["tail", "-c", str(path), *argv]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"logfan tail: {reason}"), err
        assert len(err.splitlines()) == 1
        assert not (tmp_path / "spool").exists()


class TestStatus:
    """`logfan status` with no daemon running still shows the broker's side."""

    def test_daemon_not_running(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        """One line emitted with no daemon: the sink's row shows it queued, and a note says the
        daemon is not running; exit 0."""
        path = good_config(tmp_path)
        path.write_text(path.read_text() + f"daemon: {{status_file: '{tmp_path}/status.json'}}\n")
        assert main(["emit", "-c", str(path), "one line"]) == 0  # declares the sink's queue
        capsys.readouterr()
        assert main(["status", "-c", str(path)]) == 0
        header, row, note = capsys.readouterr().out.splitlines()
        assert header.split() == [
            "SINK", "TYPE", "STATE", "NODE", "QUEUED", "HELD", "CONSUMERS", "DELIVERED", "DEAD",
            "LAST", "ERROR",
        ]  # fmt: skip
        assert row.split() == ["all", "file", "-", "-", "1", "-", "-", "-", "0", "-"]
        assert note == f"daemon: not running (no fresh {tmp_path}/status.json)"


class TestSpoolOfAnotherUser:
    """A user who may not write the embedded broker's spool is told so at once."""

    def test_emit_says_which_folder(self, tmp_path: Path) -> None:
        """emit exits 1 at once, with one sentence naming the spool and what to do."""
        public = Path(tempfile.mkdtemp(prefix="logfan-cli-"))
        try:
            public.chmod(0o755)
            path = good_config(public)
            path.chmod(0o644)
            assert main(["emit", "-c", str(path), "as root"]) == 0  # makes the spool; warms up
            for folder in (public / "spool", *(public / "spool").rglob("*")):
                if folder.is_dir():
                    folder.chmod(0o755)
            code, err = as_nobody(lambda: main(["emit", "-c", str(path), "as nobody"]))
            assert code == "1"
            assert err == (
                f"logfan emit: cannot use the embedded broker's spool {public}/spool: no write "
                f"access to {public}/spool; run this as the user that owns it (e.g. sudo -u "
                "logfan logfan ...)\n"
            )
        finally:
            shutil.rmtree(public)
