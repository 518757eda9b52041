"""`logfan tail` without a broker: the tap queue, the template, what is shown, the output."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from kombu.transport.filesystem import EXCHANGE_NAME_RE

from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.errors import LogfanError
from logfan.daemon.ops.tail import (
    BUFFER_BYTES,
    DEFAULT_FORMAT,
    Output,
    Tail,
    tap_arguments,
    tap_name,
    tap_queue,
    template_of,
)
from logfan.sinks.base import Record


def record(message: str, severity: str = "info", n: int = 0) -> Record:
    return Record(
        message=message,
        timestamp="2026-11-27T06:12:59.123Z",
        host="web1",
        tag="build",
        severity=severity,
        pid="4242",
        msgid=f"abc-{n}",
    )


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    """A pipe: (read end, write end); whatever is still open is closed at the end."""
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        with contextlib.suppress(OSError):
            os.close(fd)


def written(read_fd: int) -> str:
    """What the tail wrote to the pipe so far (it fits in the pipe's buffer)."""
    os.set_blocking(read_fd, False)
    try:
        return os.read(read_fd, 1 << 16).decode()
    except BlockingIOError:
        return ""


class TestTapQueue:
    def test_bounded_with_drop_head_and_no_dead_letters(self) -> None:
        """The newest --buffer messages and 16 MiB are kept; the oldest are dropped, not
        dead-lettered (every sink queue has its own copy)."""
        assert tap_arguments(1000) == {
            "x-max-length": 1000,
            "x-max-length-bytes": BUFFER_BYTES,
            "x-overflow": "drop-head",
        }
        assert BUFFER_BYTES == 16 * 1024 * 1024

    def test_exclusive_auto_delete_not_durable_on_the_exchange(self) -> None:
        """The queue goes with its connection and is bound to the config's exchange."""
        queue = tap_queue(BrokerConfig(exchange="logs"), "logfan-tail.web1.1.ab", 7)
        assert (queue.name, queue.exclusive, queue.auto_delete, queue.durable) == (
            "logfan-tail.web1.1.ab",
            True,
            True,
            False,
        )
        assert queue.exchange.name == "logs"
        assert queue.exchange.type == "fanout"
        assert queue.routing_key == ""
        assert queue.as_dict()["queue_arguments"] == tap_arguments(7)

    def test_name_is_never_a_sink_queue_and_fits_the_embedded_broker(self) -> None:
        """Sink queues are logfan.<sink>; the tap queue says whose it is, in file-name letters."""
        name = tap_name("web1", 4242, "0123abcd")
        assert name == "logfan-tail.web1.4242.0123abcd"
        assert not name.startswith("logfan.")
        assert EXCHANGE_NAME_RE.match(name)


class TestTemplate:
    def test_default_format(self) -> None:
        """The default shows time, host, tag[pid], severity and the line."""
        assert template_of(DEFAULT_FORMAT).render(record("hello")) == (
            "2026-11-27T06:12:59.123Z web1 build[4242] info: hello"
        )

    @pytest.mark.parametrize(
        ("text", "reason"),
        [
            ("{nope}", "unknown placeholder {nope}"),
            ("{message!r}", "takes no conversion"),
            ("{message.__class__}", "unknown placeholder"),
            ("{message", "cannot parse"),
        ],
    )
    def test_bad_format_refused(self, text: str, reason: str) -> None:
        """A bad --format is one sentence naming the option and what is wrong."""
        with pytest.raises(LogfanError, match=r"^--format: ") as caught:
            template_of(text)
        assert reason in str(caught.value)


class TestShow:
    def test_lines_with_control_characters_escaped(self, pipe: tuple[int, int]) -> None:
        """ESC, CR, LF, a C1 CSI and U+2028 are shown escaped: one record is one line, and a
        line cannot move the cursor, clear the screen or forge another line."""
        read, write = pipe
        tail = Tail(template_of("{tag}: {message}"), Output(write))
        tail.show(
            [
                record("red \x1b[31mtext\x1b[0m"),
                record("clear\x1b[2J\rfake\nforged 2026 web1 root[1] info: ok"),
                record("csi \x9b31m and \u2028 sep\tTAB"),
            ]
        )
        assert written(read).split("\n") == [
            "build: red \\x1b[31mtext\\x1b[0m",
            "build: clear\\x1b[2J\\rfake\\nforged 2026 web1 root[1] info: ok",
            "build: csi \\u009b31m and \\u2028 sep\tTAB",
            "",
        ]
        assert tail.shown == 3

    def test_limit_stops_across_deliveries(self, pipe: tuple[int, int]) -> None:
        """-n 3: two lines, then one of the next two; nothing after."""
        read, write = pipe
        tail = Tail(template_of("{message}"), Output(write), limit=3)
        tail.show([record("1"), record("2")])
        assert not tail.done
        tail.show([record("3"), record("4")])
        assert tail.done
        tail.show([record("5")])
        assert written(read) == "1\n2\n3\n"
        assert tail.shown == 3

    def test_accepts_chooses_and_limit_counts_what_is_shown(self, pipe: tuple[int, int]) -> None:
        """Only the records ``accepts`` takes are shown, and only they count towards -n."""
        read, write = pipe
        errors = Tail(
            template_of("{severity} {message}"),
            Output(write),
            accepts=lambda r: r.severity == "err",
            limit=2,
        )
        errors.show([record("a", "info"), record("b", "err"), record("c", "debug")])
        assert not errors.done
        errors.show([record("d", "info"), record("e", "err"), record("f", "err")])
        assert errors.done
        assert written(read) == "err b\nerr e\n"

    def test_nothing_to_show_writes_nothing(self, pipe: tuple[int, int]) -> None:
        """An empty delivery (or one with nothing accepted) is not an empty line."""
        read, write = pipe
        tail = Tail(template_of("{message}"), Output(write), accepts=lambda r: False)
        tail.show([record("a")])
        tail.show([])
        assert written(read) == ""


class TestOutput:
    def test_a_pipe_whose_reader_left(self, pipe: tuple[int, int]) -> None:
        """`logfan tail | head`: once head exits the output is gone, before anything more is
        written, and a write raises BrokenPipeError (Python ignores SIGPIPE)."""
        read, write = pipe
        output = Output(write)
        output.write("one\n")
        assert not output.gone()
        os.close(read)
        assert output.gone()
        with pytest.raises(BrokenPipeError):
            output.write("two\n")

    def test_a_file_is_never_gone(self, tmp_path: Path) -> None:
        """Output to a file: written whole, never taken for a reader that left."""
        with (tmp_path / "out").open("wb") as f:
            output = Output(f.fileno())
            output.write("é\n")
            assert not output.gone()
        assert (tmp_path / "out").read_text() == "é\n"

    def test_text_that_is_not_unicode_is_written_escaped(self, pipe: tuple[int, int]) -> None:
        """A lone surrogate (JSON allows "\\ud800") is written as an escape, not a crash."""
        read, write = pipe
        Output(write).write("bad \ud800 end\n")
        assert written(read) == "bad \\ud800 end\n"
