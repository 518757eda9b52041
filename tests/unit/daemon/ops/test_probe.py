"""`logfan check --probe`: the broker and every sink tried for real, each failure named."""

from __future__ import annotations

from pathlib import Path

from logfan.daemon.config.loader import load_config
from logfan.daemon.ops.probe import probe


def config_file(tmp_path: Path, sink_path: Path) -> Path:
    """An embedded-broker config with one file sink writing to ``sink_path``."""
    path = tmp_path / "logfan.yaml"
    path.write_text(
        f"broker: {{url: 'filesystem://{tmp_path}/spool'}}\n"
        f"sinks:\n  all: {{type: file, path: '{sink_path}'}}\n"
    )
    return path


class TestProbe:
    """One result per thing tried: the broker first, then each sink in config order."""

    def test_everything_answers(self, tmp_path: Path) -> None:
        """The embedded broker opens and the file sink creates its file: no problem reported."""
        target = tmp_path / "out" / "all.log"
        config = load_config(str(config_file(tmp_path, target)))
        assert probe(config) == [
            (f"broker filesystem://{tmp_path}/spool", None),
            ("sink all (file)", None),
        ]
        assert target.exists()

    def test_a_sink_that_cannot_open_says_why(self, tmp_path: Path) -> None:
        """A file sink whose folder is a file: that sink fails with the reason, the broker is OK."""
        (tmp_path / "blocker").write_text("a file, not a folder\n")
        config = load_config(str(config_file(tmp_path, tmp_path / "blocker" / "all.log")))
        (broker, broker_problem), (sink, sink_problem) = probe(config)
        assert (broker, broker_problem) == (f"broker filesystem://{tmp_path}/spool", None)
        assert sink == "sink all (file)"
        assert sink_problem is not None
        assert "sink 'all'" in sink_problem
