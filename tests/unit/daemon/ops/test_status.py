"""The daemon's figures: the STATUS= line, the status file, and `logfan status`'s table."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logfan.daemon.config.loader import BrokerConfig, Config
from logfan.daemon.config.sink import SinkConfig
from logfan.daemon.consume.figures import SinkState
from logfan.daemon.ops.status import (
    HEADERS,
    STALE_AFTER,
    STATUS_MAX_BYTES,
    read_status_file,
    remove_status_file,
    render_table,
    shorten,
    sink_figures,
    status_line,
    status_table,
    write_status_file,
)
from logfan.daemon.run.worker import SinkWorker

#: a reason longer than 80 characters, as the consumer reports a wrong password.
LOGIN = (
    "the broker at 127.0.0.1:5672 refused the login of user 'guest': check the user name and "
    "the password (broker.url)"
)
ALL = SinkConfig("all", "file", {"type": "file", "path": "/tmp/all.log"})
CONSOLE = SinkConfig("console", "console", {"type": "console"})


def worker(sink: SinkConfig) -> SinkWorker:
    """A worker handle that is never started: only its figures are used."""
    return SinkWorker(BrokerConfig(), sink, {})


def workers() -> dict[str, SinkWorker]:
    """``all``, consuming with figures, and ``console``, just starting."""
    busy, idle = worker(ALL), worker(CONSOLE)
    figures = busy.figures
    figures.state = SinkState.CONSUMING
    figures.delivered, figures.backlog, figures.held = 1500, 12, 3
    figures.redelivered, figures.dead_lettered, figures.dropped = 2, 1, 4
    figures.filtered = 5
    figures.truncated, figures.sink_truncated = 5, 6
    figures.retries, figures.connects = 7, 8
    figures.node = "amqp://guest:***@rabbit1:5672//"
    return {"all": busy, "console": idle}


class TestSinkFigures:
    """``sink_figures``: what one worker reports."""

    def test_reports_every_figure(self) -> None:
        """The sink's type and figures; truncated counts the consumer's and the sink's own."""
        assert sink_figures(workers()["all"]) == {
            "type": "file",
            "state": SinkState.CONSUMING,
            "wedged_since": None,
            "delivered": 1500,
            "backlog": 12,
            "held": 3,
            "redelivered": 2,
            "dead_lettered": 1,
            "dropped": 4,
            "truncated": 11,
            "filtered": 5,
            "retries": 7,
            "connects": 8,
            "node": "amqp://guest:***@rabbit1:5672//",
            "last_error": None,
        }

    def test_not_yet_reported(self) -> None:
        """A worker that reported nothing yet: starting, backlog unknown (None)."""
        figures = sink_figures(worker(CONSOLE))
        assert (figures["state"], figures["backlog"], figures["delivered"]) == (
            SinkState.STARTING,
            None,
            0,
        )


class TestStatusLine:
    """``status_line``: one STATUS= line for systemd."""

    def test_a_wedged_worker_says_so_and_since_when(self) -> None:
        """Whatever the worker last reported, a wedged one shows as wedged, with the time."""
        pool = workers()
        since = time.mktime((2026, 12, 4, 17, 40, 2, 0, 0, -1))
        pool["all"].wedged_since = since
        line = status_line({"all": pool["all"]})
        assert line == "all wedged 1500 delivered 12 queued (no progress since 17:40:02)"
        assert sink_figures(pool["all"])["state"] == SinkState.WEDGED
        assert sink_figures(pool["all"])["wedged_since"] == since

    def test_each_sink_state_delivered_and_backlog(self) -> None:
        """Each sink: state, delivered lines and backlog (not readable until the first reading)."""
        assert status_line(workers()) == (
            "all consuming 1500 delivered 12 queued; "
            "console starting 0 delivered queue not readable"
        )

    @pytest.mark.parametrize("state", [SinkState.DISCONNECTED, SinkState.RETRYING])
    def test_last_error_when_down(self, state: SinkState) -> None:
        """Disconnected or retrying: the last error follows, whole."""
        sink = worker(ALL)
        sink.figures.state = state
        sink.figures.last_error = LOGIN
        assert status_line({"all": sink}) == f"all {state} 0 delivered queue not readable ({LOGIN})"

    def test_errors_cut_at_a_word_boundary_only_when_the_line_would_be_too_long(self) -> None:
        """Over the limit, the longest reasons are cut at a word boundary with an ellipsis; a
        short one stays whole, and the line keeps within the limit."""
        short, long = worker(ALL), worker(CONSOLE)
        for sink in (short, long):
            sink.figures.state = SinkState.DISCONNECTED
        short.figures.last_error = "connection refused"
        long.figures.last_error = LOGIN
        pool = {"all": short, "console": long}
        whole = status_line(pool)
        assert whole.endswith(f"({LOGIN})")
        line = status_line(pool, limit=len(whole) - 20)
        assert len(line.encode()) <= len(whole) - 20
        assert line.startswith(
            "all disconnected 0 delivered queue not readable (connection refused); "
        )
        cut = line.removeprefix(
            "all disconnected 0 delivered queue not readable (connection refused); "
            "console disconnected 0 delivered queue not readable ("
        )
        assert cut.endswith("\u2026)")
        kept = cut.removesuffix("\u2026)")
        assert LOGIN.startswith(kept)
        assert LOGIN[len(kept)] == " ", f"cut inside a word: {kept!r}"

    def test_the_default_limit_keeps_a_notification_under_4_kib(self) -> None:
        """systemd ignores a notification of 4096 bytes or more: with many sinks each with a long
        reason, the line stays within STATUS_MAX_BYTES."""
        pool = {}
        for i in range(40):
            sink = worker(SinkConfig(f"sink{i}", "file", {"type": "file", "path": "/x"}))
            sink.figures.state = SinkState.DISCONNECTED
            sink.figures.last_error = LOGIN + " é" * 20
            pool[f"sink{i}"] = sink
        line = status_line(pool)
        assert len(line.encode()) <= STATUS_MAX_BYTES < 4096 - len("READY=1\nSTATUS=")
        assert line.endswith("\u2026")


class TestShorten:
    """``shorten``: text within a number of UTF-8 bytes, never cut inside a word."""

    def test_fits_whole(self) -> None:
        assert shorten(LOGIN, len(LOGIN)) == LOGIN

    def test_the_mechanism_sentence(self) -> None:
        """The reason STATUS= used to cut mid-word (``...mechanism )``)."""
        text = (
            "(0, 0): (403) ACCESS_REFUSED - Login was refused using authentication mechanism "
            "PLAIN. For details see the broker logfile."
        )
        assert shorten(text, 80) == (
            "(0, 0): (403) ACCESS_REFUSED - Login was refused using authentication\u2026"
        )

    def test_a_cut_right_after_a_word_keeps_it(self) -> None:
        assert shorten("alpha beta gamma", 11 + len("\u2026".encode())) == "alpha beta\u2026"

    def test_trailing_punctuation_dropped(self) -> None:
        assert shorten("alpha, beta gamma", 9) == "alpha\u2026"

    def test_a_single_word_longer_than_the_limit_is_cut_within(self) -> None:
        """Nothing else could be shown of it."""
        assert shorten("x" * 50, 13) == "x" * 10 + "\u2026"

    def test_multibyte_characters_are_never_split(self) -> None:
        line = shorten("\u00e9t\u00e9 " * 10, 20)
        assert len(line.encode()) <= 20
        assert line == "\u00e9t\u00e9 \u00e9t\u00e9 \u00e9t\u00e9\u2026"

    @given(
        words=st.lists(
            st.text(
                alphabet=st.characters(blacklist_categories=["Z", "C"]), min_size=1, max_size=8
            ),
            min_size=1,
            max_size=30,
        ),
        # a word is at most 32 bytes: with the ellipsis, each fits in the smallest limit
        limit=st.integers(min_value=35, max_value=300),
    )
    def test_within_the_limit_and_at_a_word_boundary(self, words: list[str], limit: int) -> None:
        """Any text of words shorter than the limit: whole, or a whole-word prefix and "…"."""
        text = " ".join(words)
        out = shorten(text, limit)
        assert len(out.encode()) <= limit
        if out == text:
            return
        kept = out.removesuffix("\u2026")
        assert out.endswith("\u2026")
        assert text.startswith(kept)
        assert kept == "" or text[len(kept)] in " ,;:(", f"cut inside a word: {kept!r}"

    @pytest.mark.parametrize(
        "state", [SinkState.CONSUMING, SinkState.STARTING, SinkState.RESTARTING]
    )
    def test_no_last_error_otherwise(self, state: SinkState) -> None:
        """In any other state a past error is not shown."""
        sink = worker(ALL)
        sink.figures.state = state
        sink.figures.last_error = "connection refused"
        assert "refused" not in status_line({"all": sink})

    def test_no_sinks(self) -> None:
        """No sinks: an empty line."""
        assert status_line({}) == ""


class TestStatusFile:
    """``write_status_file``, ``read_status_file``, ``remove_status_file``."""

    def test_round_trip(self, tmp_path: Path) -> None:
        """What is written is read back, in a folder made as needed, with no temp file left."""
        path = tmp_path / "run" / "logfan" / "status.json"
        write_status_file(str(path), workers())
        doc = read_status_file(str(path))
        assert doc is not None
        assert doc["pid"] == os.getpid()
        assert doc["sinks"]["all"]["delivered"] == 1500
        assert doc["sinks"]["all"]["node"] == "amqp://guest:***@rabbit1:5672//"
        assert doc["sinks"]["console"]["backlog"] is None
        assert os.listdir(path.parent) == ["status.json"]

    def test_state_written_as_its_plain_string(self, tmp_path: Path) -> None:
        """The state is stored as the plain word, e.g. ``"consuming"``."""
        path = tmp_path / "status.json"
        write_status_file(str(path), workers())
        raw = json.loads(path.read_text())
        assert raw["sinks"]["all"]["state"] == "consuming"
        assert type(raw["sinks"]["all"]["state"]) is str
        assert raw["sinks"]["console"]["state"] == "starting"

    def test_stale_file_reads_as_none(self, tmp_path: Path) -> None:
        """A file not rewritten for longer than STALE_AFTER: the daemon is not running."""
        path = tmp_path / "status.json"
        doc = {"pid": 1, "written_at": time.time() - STALE_AFTER - 60, "sinks": {}}
        path.write_text(json.dumps(doc))
        assert read_status_file(str(path)) is None
        doc["written_at"] = time.time()
        path.write_text(json.dumps(doc))
        assert read_status_file(str(path)) == doc

    def test_no_written_at_is_stale(self, tmp_path: Path) -> None:
        """A document without ``written_at`` is not taken as fresh."""
        path = tmp_path / "status.json"
        path.write_text(json.dumps({"pid": 1, "sinks": {}}))
        assert read_status_file(str(path)) is None

    @pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '"text"', "\xff\xfe"])
    def test_garbage_reads_as_none(self, tmp_path: Path, content: str) -> None:
        """A file that is not a JSON object reads as no figures."""
        path = tmp_path / "status.json"
        path.write_text(content, encoding="latin-1")
        assert read_status_file(str(path)) is None

    def test_missing_file_reads_as_none(self, tmp_path: Path) -> None:
        """No file: no figures."""
        assert read_status_file(str(tmp_path / "status.json")) is None

    def test_remove(self, tmp_path: Path) -> None:
        """Removing deletes the file; removing it again is no error."""
        path = tmp_path / "status.json"
        write_status_file(str(path), workers())
        remove_status_file(str(path))
        assert not path.exists()
        remove_status_file(str(path))

    @pytest.mark.parametrize("written_at", ["soon", None, [1], {"t": 1}])
    def test_written_at_not_a_number_reads_as_none(
        self, tmp_path: Path, written_at: object
    ) -> None:
        """A JSON object whose written_at is no number is garbage too: None, not an exception."""
        path = tmp_path / "status.json"
        path.write_text(json.dumps({"pid": 1, "written_at": written_at, "sinks": {}}))
        assert read_status_file(str(path)) is None


CONFIG = Config(path="/etc/logfan/logfan.yaml", broker=BrokerConfig(), sinks=(ALL, CONSOLE))


class TestStatusTable:
    """``status_table``: the daemon's figures next to the broker's depths, one row per sink."""

    def test_figures_next_to_depths(self) -> None:
        """Each column from its source; NODE as host:port, never the URL with its user."""
        daemon = {
            "sinks": {
                "all": {
                    "state": "retrying",
                    "node": "amqp://guest:***@rabbit1:5672//",
                    "held": 3,
                    "delivered": 1500,
                    "last_error": "disk full",
                },
                "console": {"state": "consuming", "node": "amqp://rabbit2//", "held": 0},
            }
        }
        depths = {"all": ("12", "1", "4"), "console": ("0", "2", "0")}
        assert status_table(CONFIG, daemon, depths) == [
            ["all", "file", "retrying", "rabbit1:5672", "12", "3", "1", "1500", "4", "disk full"],
            ["console", "console", "consuming", "rabbit2", "0", "0", "2", "-", "0", "-"],
        ]

    def test_wedged_sink_says_since_when(self) -> None:
        """A wedged sink's LAST ERROR says since when it made no progress."""
        since = time.mktime((2026, 12, 4, 9, 5, 0, 0, 0, -1))
        daemon = {"sinks": {"all": {"state": "wedged", "wedged_since": since, "last_error": None}}}
        (row, _) = status_table(CONFIG, daemon, {})
        assert (row[2], row[-1]) == ("wedged", "no progress since 09:05:00")

    def test_daemon_stopped(self) -> None:
        """No daemon figures: its columns are ``-``; the broker's depths are still shown."""
        rows = status_table(CONFIG, None, {"all": ("7", "0", "0")})
        assert rows[0] == ["all", "file", "-", "-", "7", "-", "0", "-", "0", "-"]
        assert len(rows[0]) == len(HEADERS)

    def test_missing_depths(self) -> None:
        """A sink the broker gave no depths for: ``?`` in the broker's columns."""
        rows = status_table(CONFIG, None, {})
        assert [(r[4], r[6], r[8]) for r in rows] == [("?", "?", "?"), ("?", "?", "?")]

    def test_embedded_node_and_long_error(self) -> None:
        """A node that is no host (the embedded spool) is ``-``; a long error is shown whole."""
        daemon = {"sinks": {"all": {"node": "filesystem:///spool", "last_error": LOGIN}}}
        row = status_table(CONFIG, daemon, {})[0]
        assert row[3] == "-"
        assert row[9] == LOGIN


class TestRenderTable:
    """``render_table``: plain text columns."""

    def test_padded_to_the_widest_cell(self) -> None:
        """Each column is as wide as its widest cell, two spaces apart, no trailing spaces."""
        table = render_table(("SINK", "STATE", "N"), [["all", "consuming", "1"], ["c", "-", "22"]])
        assert table.split("\n") == [
            "SINK  STATE      N",
            "all   consuming  1",
            "c     -          22",
        ]

    def test_no_trailing_spaces(self) -> None:
        """Empty or short last cells leave no spaces at the end of a line."""
        table = render_table(("A", "LAST ERROR"), [["x", ""], ["longer", "e"]])
        assert table.split("\n") == ["A       LAST ERROR", "x", "longer  e"]
        assert all(line == line.rstrip() for line in table.split("\n"))
