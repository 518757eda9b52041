"""The sink contract: the record a sink receives, the protocol it implements, the errors it raises.

A sink type is a class registered in the entry-point group ``logfan.sinks``. The daemon builds it
as ``SinkClass(name, options)`` where ``options`` is an :class:`Options` view of the sink's YAML
mapping (minus ``type``). The constructor reads and checks every option it knows, then calls
``options.finish()`` so unknown keys are refused; it raises :class:`SinkConfigError` naming the
option and quoting the bad value. ``open`` acquires resources (files, sockets); ``write`` takes a
whole batch of records and either writes all of it or raises; ``flush`` makes the batch durable as
far as the sink promises; ``close`` releases everything. A sink never acknowledges anything: it
raises :class:`RetryableSinkError` (the batch stays queued and is retried after a back-off) or
:class:`PermanentSinkError` (the records go to the sink's dead-letter queue), and the consumer
decides. A sink may also define ``reopen()`` (optional, not part of the protocol): the daemon
calls it from the sink's own consumer thread after SIGHUP, before the next write, so file-like
sinks let go of rotated files. This module never imports ``logfan.daemon``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol, TypeVar, runtime_checkable

__all__ = [
    "SEVERITIES",
    "Options",
    "PermanentSinkError",
    "Record",
    "RetryableSinkError",
    "Sink",
    "SinkConfigError",
    "SinkError",
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
    if len(v) == 1 and v.isdigit() and int(v) < len(SEVERITIES):
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


class SinkConfigError(Exception):
    """A sink option is missing or wrong; ``key`` is the option's name (None: the whole sink)."""

    def __init__(self, sink: str, key: str | None, reason: str) -> None:
        self.sink = sink
        self.key = key
        self.reason = reason
        where = f"sink {sink!r}" + (f", option {key!r}" if key else "")
        super().__init__(f"{where}: {reason}")


@runtime_checkable
class Sink(Protocol):
    """What the daemon calls on a sink; see the module docstring for the contract."""

    name: str

    def open(self) -> None: ...

    def write(self, records: Sequence[Record]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


T = TypeVar("T")
_MISSING: Any = object()


class Options:
    """A typed, checked view of one sink's options; every getter consumes its key.

    Getters raise :class:`SinkConfigError` naming the option and quoting the bad value.
    ``finish()`` refuses keys nobody read, listing the valid ones.
    """

    #: keys every sink accepts and the daemon reads itself (see logfan.daemon.config.sink).
    COMMON: ClassVar[frozenset[str]] = frozenset(
        {
            "type",
            "max_retries",
            "max_queue",
            "max_line_bytes",
            "flush_interval",
            "queue_type",
            "scope",
        }
    )

    def __init__(self, sink: str, values: Mapping[str, Any]) -> None:
        self.sink = sink
        self._values = dict(values)
        self._known: set[str] = set(self.COMMON)

    def error(self, key: str | None, reason: str) -> SinkConfigError:
        """Build the error for ``key`` (to raise from a sink's own checks)."""
        return SinkConfigError(self.sink, key, reason)

    def _take(self, key: str, default: Any) -> Any:
        self._known.add(key)
        if key in self._values:
            return self._values[key]
        if default is _MISSING:
            raise self.error(key, "this option is required")
        return default

    def get_str(self, key: str, default: Any = _MISSING) -> Any:
        """A non-empty string option."""
        value = self._take(key, default)
        if value is default and key not in self._values:
            return value
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    def get_choice(self, key: str, choices: Iterable[str], default: Any = _MISSING) -> Any:
        """A string option that must be one of ``choices``."""
        allowed = list(choices)
        value = self._take(key, default)
        if value is default and key not in self._values:
            return value
        if value not in allowed:
            raise self.error(key, f"expected one of {', '.join(allowed)}; got {value!r}")
        return value

    def get_int(self, key: str, default: Any = _MISSING, *, minimum: int | None = None) -> Any:
        """An integer option, at least ``minimum`` if given."""
        value = self._take(key, default)
        if value is default and key not in self._values:
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected a whole number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"expected a number of at least {minimum}, got {value!r}")
        return value

    def get_float(self, key: str, default: Any = _MISSING, *, minimum: float | None = None) -> Any:
        """A number option (int or float), at least ``minimum`` if given."""
        value = self._take(key, default)
        if value is default and key not in self._values:
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(key, f"expected a number, got {value!r}")
        if minimum is not None and value < minimum:
            raise self.error(key, f"expected a number of at least {minimum}, got {value!r}")
        return float(value)

    def get_bool(self, key: str, default: Any = _MISSING) -> Any:
        """A true/false option."""
        value = self._take(key, default)
        if value is default and key not in self._values:
            return value
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    def get_mode(self, key: str, default: int) -> int:
        """A file mode written in octal (``0640``, ``"0640"``, ``640``).

        YAML turns ``0640`` into 416 and ``640`` into 640; the config loader keeps each integer's
        source text in ``source_text`` so both mean 0o640 here. An int without source text
        (built in Python) is taken as the mode itself.
        """
        if key not in self._values:
            self._known.add(key)
            return default
        value = self._take(key, default)
        text: str | None = getattr(value, "source_text", None)
        if text is None and isinstance(value, str):
            text = value
        if text is None and isinstance(value, int) and not isinstance(value, bool):
            text = oct(value)[2:]
        if text is not None:
            digits = text.strip().lower().removeprefix("0o")
            if 0 < len(digits) <= 4 and all(c in "01234567" for c in digits):
                return int(digits, 8)
        raise self.error(key, f"expected an octal file mode like 0640, got {value!r}")

    def get_raw(self, key: str, default: Any = None) -> Any:
        """An option of any shape; the sink checks it itself."""
        return self._take(key, default)

    def finish(self) -> None:
        """Refuse keys no getter read, naming the valid ones."""
        unknown = sorted(set(self._values) - self._known)
        if unknown:
            valid = ", ".join(sorted(self._known - self.COMMON))
            raise self.error(unknown[0], f"unknown option; valid options are: {valid}")
