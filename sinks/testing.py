"""Testing a sink without a broker or a daemon: the lifecycle the daemon drives, as a check.

``check_sink`` builds the sink and drives it exactly as a worker does, retry included, and
raises ``AssertionError`` naming the cause when the sink breaks the contract of
:mod:`logfan.sinks.base`. ``make_records`` gives realistic records; ``CapturingSink`` keeps what
it was given and raises the errors a test asks for, for code that drives sinks. For pytest::

    from logfan.sinks.testing import check_sink, make_records

    def test_my_sink(tmp_path):
        path = tmp_path / "out.jsonl"
        check_sink(MySink, {"path": str(path)}, read=lambda: path.read_text().splitlines(),
                   bad=[{"path": ""}])
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from logfan.sinks.base import (
    SEVERITIES,
    Options,
    Record,
    SinkConfigError,
    SinkError,
)
from logfan.sinks.batch import Batch

__all__ = ["CapturingSink", "check_sink", "make_records"]

#: the methods the daemon calls on every sink, in the order of a sink's life.
METHODS = ("open", "write", "flush", "close")
_PRINTABLE = re.compile(r"[\x20-\x7e]*")
#: an option no sink knows: a sink must refuse it (``options.finish()``).
UNKNOWN_OPTION = "logfan_testing_unknown_option"


def make_records(
    n: int, *, unicode: bool = False, controls: bool = False, **fields: str
) -> list[Record]:
    """``n`` records as the daemon hands them over: numbered messages with a time, host, tag,
    pid, a severity cycling through all eight, and message ids; ``fields`` overrides any field.

    ``unicode`` adds non-ASCII text (accents, CJK, an emoji); ``controls`` adds a newline, a
    carriage return, ESC, NUL and a C1 control, which a sink must not let forge another line.
    """
    extra = (" héllo 日本 🚀" if unicode else "") + (" a\nb\rc\x1b[31m\x00\x9b" if controls else "")
    return [
        Record(
            **{
                "message": f"line {i:06d}{extra}",
                "timestamp": f"2026-11-27T06:12:{i % 60:02d}.{i % 1000:03d}Z",
                "host": "web1",
                "tag": "app",
                "severity": SEVERITIES[i % len(SEVERITIES)],
                "pid": "4242",
                "msgid": f"5f0c9d-{i}",
                **fields,
            }
        )
        for i in range(n)
    ]


def _fds() -> set[str]:
    try:
        return set(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux: the check of open files is left out
        return set()


def _build(sink_class: Any, name: str, options: Mapping[str, Any]) -> Any:
    """The sink built as the daemon builds it; its constructor must open nothing."""
    fds, threads = _fds(), threading.active_count()
    sink = sink_class(name, Options(name, {"type": "checked", **options}))
    opened = len(_fds() - fds)
    started = threading.active_count() - threads
    if opened or started:
        what = f"{opened} file(s) or socket(s)" if opened else f"{started} thread(s)"
        raise AssertionError(
            f"{sink_class.__name__}(...) opened {what}: the constructor runs in every "
            "`logfan check`, `logfan emit` and reload; open them in open()"
        )
    return sink


def _call(sink: Any, method: str, *args: Any) -> None:
    """One call the daemon makes; only the contract's errors may come out of it."""
    try:
        getattr(sink, method)(*args)
    except SinkError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"{type(sink).__name__}.{method}() raised {type(exc).__name__}: {exc}; a sink "
            "raises RetryableSinkError (the target is unavailable) or PermanentSinkError (it "
            "will never take these records), and nothing else"
        ) from exc


def _key(record: Record) -> str:
    """What identifies a record in its sink's output: the printable start of its message (a
    sink may escape or strip what follows), or the whole message."""
    match = _PRINTABLE.match(record.message)
    return (match[0].rstrip() if match else "") or record.message


def check_sink(
    sink_class: Any,
    options: Mapping[str, Any],
    *,
    records: Sequence[Record] | None = None,
    read: Callable[[], Iterable[str]] | None = None,
    bad: Iterable[Mapping[str, Any]] = (),
    name: str = "checked",
) -> None:
    """Drive ``sink_class`` as the daemon does; AssertionError names any break of the contract.

    The sink is built (its constructor must open no file, socket or thread), opened, given
    ``records`` (default: ``make_records(100)``) with write then flush, as a ``Batch``: a
    ``Sequence[Record]`` that is not a list, as the daemon hands it over; then the retry the
    daemon makes after an error: close, open, write and flush of the same batch; then close.
    Every option dict of ``bad`` must be refused with SinkConfigError, and so must an unknown
    option. With ``read`` (what the sink's target holds, one item per line, as a test reads it),
    every record must be there, found by the printable start of its message (a sink may escape
    the rest); duplicates are allowed: delivery is at least once.
    """
    missing = [m for m in METHODS if not callable(getattr(sink_class, m, None))]
    if missing:
        raise AssertionError(
            f"{sink_class.__name__} lacks {', '.join(missing)}: a sink defines "
            f"{', '.join(METHODS)} (logfan.sinks.base.Sink)"
        )
    for options_that_are_bad in [*bad, {**options, UNKNOWN_OPTION: "x"}]:
        try:
            _build(sink_class, name, options_that_are_bad)
        except SinkConfigError:
            continue
        unknown = UNKNOWN_OPTION in options_that_are_bad
        raise AssertionError(
            f"{sink_class.__name__} accepted "
            + (
                f"the unknown option {UNKNOWN_OPTION!r}: call options.finish() last"
                if unknown
                else f"{dict(options_that_are_bad)!r}: raise options.error(KEY, REASON)"
            )
        )
    batch = list(records if records is not None else make_records(100))
    sink = _build(sink_class, name, options)
    steps: list[tuple[str, tuple[Any, ...]]] = [
        ("open", ()),
        ("write", (Batch.of(batch),)),  # what the daemon hands over: a Sequence, not a list
        ("flush", ()),
        ("close", ()),
    ]
    try:
        for method, args in [*steps, *steps]:  # then the retry: the same batch again
            _call(sink, method, *args)
    except BaseException:
        with contextlib.suppress(Exception):  # as the daemon does after an error
            sink.close()
        raise
    if read is not None:
        written = list(read())
        lost = [r.message for r in batch if not any(_key(r) in line for line in written)]
        if lost:
            raise AssertionError(
                f"{len(lost)} of {len(batch)} records are not in what read() returns (first: "
                f"{lost[0]!r}): a write that returns has written the whole batch, or raised"
            )


class CapturingSink:
    """A sink that keeps every batch it was given, and raises what a test tells it to.

    ``fail("write", RetryableSinkError("down"), times=2)`` makes the next two ``write`` calls
    raise instead of keeping their batch. ``calls`` lists every method called, in order;
    ``records`` every record kept.
    """

    def __init__(self, name: str = "capture", options: Options | None = None) -> None:
        if options is not None:
            options.finish()
        self.name = name
        self.calls: list[str] = []
        self.batches: list[list[Record]] = []
        self._failures: dict[str, list[Exception]] = {}

    @property
    def records(self) -> list[Record]:
        """Every record written, in order."""
        return [record for batch in self.batches for record in batch]

    def fail(self, method: str, error: Exception, *, times: int = 1) -> None:
        """Make the next ``times`` calls of ``method`` raise ``error``."""
        if method not in METHODS:
            raise ValueError(f"no sink method {method!r}; expected one of {', '.join(METHODS)}")
        self._failures.setdefault(method, []).extend([error] * times)

    def _called(self, method: str) -> None:
        self.calls.append(method)
        pending = self._failures.get(method)
        if pending:
            raise pending.pop(0)

    def open(self) -> None:
        self._called("open")

    def write(self, records: Sequence[Record]) -> None:
        self._called("write")
        self.batches.append(list(records))

    def flush(self) -> None:
        self._called("flush")

    def close(self) -> None:
        self._called("close")
