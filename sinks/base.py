"""The sink contract: the record a sink receives, the protocol it implements, the errors it raises.

Who calls what: the constructor runs wherever a config is loaded (``check``, every ``emit``, the
supervisor, each worker), so it opens nothing; ``open``, ``write`` + ``flush`` (always a pair),
``close`` and ``reopen`` run in the sink's own worker process, in its consumer thread; after an
error the consumer calls ``close``, waits a back-off (0.5 s doubling to 30 s) and calls ``open``
and ``write`` with the same records. The docs' "Writing a sink" page has the whole lifecycle.

A sink type is a class registered in the entry-point group ``logfan.sinks``. The daemon builds it
as ``SinkClass(name, options)`` where ``options`` is an :class:`Options` view of the sink's YAML
mapping (minus ``type``). The constructor reads and checks every option it knows, then calls
``options.finish()`` so unknown keys are refused; it raises :class:`SinkConfigError` naming the
option and quoting the bad value. ``open`` acquires resources (files, sockets); ``write`` takes a
whole batch of records and either writes all of it or raises; ``flush`` makes the batch durable as
far as the sink promises; ``close`` releases everything. A sink never acknowledges anything: it
raises :class:`RetryableSinkError` (the batch stays queued and is retried after a back-off) or
:class:`PermanentSinkError` (the records go to the sink's dead-letter queue), and the consumer
decides. A sink may also define ``reopen()`` (:class:`SupportsReopen`): the daemon calls it
from the sink's own consumer thread after SIGHUP or a reload, before the next write, so
file-like sinks let go of rotated files. This module never imports ``logfan.daemon``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol, runtime_checkable

from logfan.sinks.options import Options, SinkConfigError

__all__ = [
    "SEVERITIES",
    "Options",
    "PermanentSinkError",
    "Record",
    "RetryableSinkError",
    "Sink",
    "SinkConfigError",
    "SinkError",
    "SupportsReopen",
    "normalize_severity",
]

#: syslog severities, by number (RFC 5424 section 6.2.1), in their usual short names.
SEVERITIES: tuple[str, ...] = (
    "emerg",
    "alert",
    "crit",
    "err",
    "warning",
    "notice",
    "info",
    "debug",
)

_SEVERITY_ALIASES: dict[str, str] = {
    "emergency": "emerg",
    "panic": "emerg",
    "critical": "crit",
    "error": "err",
    "warn": "warning",
    "information": "info",
    "informational": "info",
}


def normalize_severity(value: str) -> str | None:
    """Return the canonical severity name for ``value`` (name, alias or digit), or None."""
    v = value.strip().lower()
    if v in SEVERITIES:
        return v
    if v in _SEVERITY_ALIASES:
        return _SEVERITY_ALIASES[v]
    if len(v) == 1 and "0" <= v <= "7":
        return SEVERITIES[int(v)]
    return None


class Record(NamedTuple):
    """One log line and its metadata, as a sink receives it (immutable).

    ``timestamp`` is RFC 3339 text with milliseconds (``2026-11-27T06:12:59.123Z``); ``host``,
    ``tag`` and ``pid`` are ``"-"`` when the publisher did not say; ``severity`` is one of
    :data:`SEVERITIES`; ``msgid`` identifies the line across redeliveries (``"-"`` if unknown).
    A named tuple, not a dataclass: the daemon builds hundreds of thousands per second.
    """

    message: str
    timestamp: str
    host: str = "-"
    tag: str = "-"
    severity: str = "info"
    pid: str = "-"
    msgid: str = "-"


class SinkError(Exception):
    """Base of the errors a sink raises from ``open``, ``write`` or ``flush``."""


class RetryableSinkError(SinkError):
    """The target is unavailable for now: keep the batch queued and retry after a back-off."""


class PermanentSinkError(SinkError):
    """The sink will never accept these records: dead-letter them instead of retrying."""


@runtime_checkable
class Sink(Protocol):
    """What the daemon calls on a sink; see the module docstring for the contract."""

    name: str

    def open(self) -> None: ...

    def write(self, records: Sequence[Record]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class SupportsReopen(Protocol):
    """A sink that can let go of its files on demand (optional, beside :class:`Sink`).

    After SIGHUP or a reload the daemon calls ``reopen()`` from the sink's own consumer thread,
    before its next write, so a file sink lets go of a file logrotate renamed.
    """

    def reopen(self) -> None: ...
