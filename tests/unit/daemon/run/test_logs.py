"""logfan's own logs: one JSON object per line, passwords hidden; journald fields."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from logfan.daemon.run.logs import JournalHandler, configure


@contextlib.contextmanager
def configured(*, json_output: bool, level: str = "info") -> Iterator[None]:
    """``configure(...)`` for the block; then the root logger's handlers and level, kombu's and
    amqp's levels and structlog are put back as they were.

    Saved and restored within the test's own call (not by a fixture): the handlers pytest adds
    for each phase are then the ones it removes at the phase's end, none left behind.
    """
    root = logging.getLogger()
    handlers, root_level = root.handlers[:], root.level
    levels = {name: logging.getLogger(name).level for name in ("kombu", "amqp", "watchdog")}
    try:
        configure(json_output=json_output, level=level)
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(root_level)
        for name, saved in levels.items():
            logging.getLogger(name).setLevel(saved)
        structlog.reset_defaults()


def json_lines(err: str) -> list[dict[str, Any]]:
    """Each stderr line as the JSON object it must be."""
    return [json.loads(line) for line in err.splitlines()]


class TestConfigure:
    """``configure(json_output=True)``: JSON on stderr, passwords shown as ``***``."""

    def test_structlog_event_is_one_json_object(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An event with a URL: one JSON line with the event's values, the password hidden."""
        with configured(json_output=True):
            structlog.get_logger("logfan.test").warning(
                "consumer reconnected", url="amqp://logfan:s3cret@rabbit:5672//", attempt=3
            )
        err = capsys.readouterr().err
        (record,) = json_lines(err)
        assert record["event"] == "consumer reconnected"
        assert record["url"] == "amqp://logfan:***@rabbit:5672//"
        assert record["attempt"] == 3
        assert record["level"] == "warning"
        assert record["logger"] == "logfan.test"
        assert isinstance(record["timestamp"], str)
        assert "s3cret" not in err

    def test_stdlib_logger_text_is_redacted(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A library's own log line (kombu's) goes the same way, its URL redacted too."""
        with configured(json_output=True):
            logging.getLogger("kombu.connection").warning("lost amqp://u:s3cret@h//, retrying")
        (record,) = json_lines(capsys.readouterr().err)
        assert record["event"] == "lost amqp://u:***@h//, retrying"
        assert record["logger"] == "kombu.connection"

    def test_level(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Events below the configured level are not written; kombu logs from warning up."""
        with configured(json_output=True, level="warning"):
            log = structlog.get_logger("logfan.test")
            log.info("not shown")
            log.warning("shown")
            logging.getLogger("kombu").info("chatty")
        assert [r["event"] for r in json_lines(capsys.readouterr().err)] == ["shown"]

    def test_kombu_and_amqp_quiet_below_warning(self) -> None:
        """Even at level debug, kombu's and amqp's loggers pass only warnings and up."""
        with configured(json_output=True, level="debug"):
            assert logging.getLogger().level == logging.DEBUG
            assert logging.getLogger("kombu").level == logging.WARNING
            assert logging.getLogger("amqp").level == logging.WARNING

    def test_reconfigure_replaces_the_handler(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Configuring twice leaves one handler: each event is written once."""
        with configured(json_output=True):
            configure(json_output=True)
            structlog.get_logger("logfan.test").warning("once")
        assert len(json_lines(capsys.readouterr().err)) == 1

    def test_exception_text_is_redacted(self, capsys: pytest.CaptureFixture[str]) -> None:
        """An exception logged with its traceback shows a URL in its message redacted too."""

        def connect() -> None:
            raise ConnectionError("cannot reach amqp://logfan:s3cret@rabbit:5672//")

        with configured(json_output=True):
            try:
                connect()
            except ConnectionError:
                structlog.get_logger("logfan.test").exception("supervisor failed")
        err = capsys.readouterr().err
        assert "amqp://logfan:***@rabbit:5672//" in err
        assert "s3cret" not in err


class Journal:
    """Records what would be sent to journald (systemd.journal.send's keyword fields)."""

    def __init__(self) -> None:
        self.entries: list[dict[str, object]] = []

    def send(self, **fields: object) -> None:
        self.entries.append(fields)


def record(level: int, msg: Any) -> logging.LogRecord:
    """A log record as structlog hands it to a handler (its event dict as ``msg``)."""
    return logging.LogRecord("logfan.test", level, __file__, 1, msg, None, None)


class TestJournalHandler:
    """``JournalHandler``: MESSAGE, PRIORITY, SYSLOG_IDENTIFIER, and a field per value."""

    def test_event_values_become_fields(self) -> None:
        """Each value of the event dict is a LOGFAN_<KEY> field, upper case, '-' as '_'."""
        journal = Journal()
        event = {
            "event": "sink write failed",
            "sink": "all",
            "error-type": "OSError",
            "attempt": 3,
            "_record": "private",
            "node": None,
        }
        JournalHandler(journal.send).handle(record(logging.WARNING, event))
        (entry,) = journal.entries
        assert entry.pop("MESSAGE") == "sink write failed sink=all error-type=OSError attempt=3"
        assert entry == {
            "PRIORITY": "4",
            "SYSLOG_IDENTIFIER": "logfan",
            "CODE_FILE": __file__,
            "CODE_LINE": 1,
            "CODE_FUNC": "None",
            "LOGFAN_EVENT": "sink write failed",
            "LOGFAN_SINK": "all",
            "LOGFAN_ERROR_TYPE": "OSError",
            "LOGFAN_ATTEMPT": "3",
        }, "keys starting with '_' and None values are left out"

    @pytest.mark.parametrize(
        ("level", "priority"),
        [
            (logging.DEBUG, "7"),
            (logging.INFO, "6"),
            (logging.WARNING, "4"),
            (logging.ERROR, "3"),
            (logging.CRITICAL, "2"),
        ],
    )
    def test_priority(self, level: int, priority: str) -> None:
        """Python's levels map to syslog priorities: debug 7, info 6, warning 4, error 3, crit 2."""
        journal = Journal()
        JournalHandler(journal.send).handle(record(level, {"event": "x"}))
        assert journal.entries[0]["PRIORITY"] == priority

    def test_a_plain_message_is_its_text(self) -> None:
        """A plain (not structlog) message: MESSAGE is its text, with no timestamp or level."""
        journal = Journal()
        handler = JournalHandler(journal.send)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
        handler.handle(record(logging.INFO, "plain text"))
        (entry,) = journal.entries
        assert (entry["MESSAGE"], entry["LOGFAN_EVENT"]) == ("plain text", "plain text")

    def test_values_that_are_not_text_are_json(self) -> None:
        """Lists and mappings are JSON in their field and in MESSAGE, not Python reprs."""
        journal = Journal()
        event = {"event": "config reloaded", "added": ["extra"], "delivered": {"all": 5}}
        JournalHandler(journal.send).handle(record(logging.INFO, event))
        (entry,) = journal.entries
        assert entry["LOGFAN_ADDED"] == '["extra"]'
        assert entry["LOGFAN_DELIVERED"] == '{"all": 5}'
        assert entry["MESSAGE"] == 'config reloaded added=["extra"] delivered={"all": 5}'

    def test_the_code_that_logged(self) -> None:
        """CODE_FILE, CODE_LINE and CODE_FUNC come from the event (structlog's call site)."""
        journal = Journal()
        event = {"event": "x", "pathname": "/a/b.py", "lineno": 7, "func_name": "go"}
        JournalHandler(journal.send).handle(record(logging.INFO, event))
        (entry,) = journal.entries
        assert (entry["CODE_FILE"], entry["CODE_LINE"], entry["CODE_FUNC"]) == ("/a/b.py", 7, "go")
        assert "LOGFAN_PATHNAME" not in entry

    def test_long_key_cut_to_journald_limit(self) -> None:
        """A field name is at most 64 characters, journald's limit."""
        journal = Journal()
        JournalHandler(journal.send).handle(record(logging.INFO, {"k" * 100: "v"}))
        (name,) = (k for k in journal.entries[0] if k.startswith("LOGFAN_"))
        assert name == ("LOGFAN_" + "K" * 100)[:64]

    def test_send_failure_does_not_raise(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A journal that refuses the entry never takes the caller down."""
        reported: list[logging.LogRecord] = []

        def refuse(**_fields: str) -> None:
            raise OSError("journald is gone")

        handler = JournalHandler(refuse)
        monkeypatch.setattr(handler, "handleError", reported.append)
        handler.handle(record(logging.ERROR, {"event": "x"}))
        assert len(reported) == 1


class TestQuietLibraries:
    """Libraries that log every event at DEBUG are held at WARNING, whatever --log-level says."""

    @pytest.mark.parametrize("name", ["kombu", "amqp", "watchdog"])
    def test_held_at_warning_even_at_debug(self, name: str) -> None:
        """At ``--log-level debug`` the config watcher (watchdog), kombu and amqp say nothing
        below WARNING: the watcher would log every write to the config's folder."""
        with configured(json_output=True, level="debug"):
            assert logging.getLogger(name).getEffectiveLevel() == logging.WARNING
