"""Checked reads of settings, one vocabulary for the daemon's config and every sink's options.

A getter takes its key (consumes it), checks the value and returns it, or raises an
:class:`OptionError` naming the key and quoting the bad value; ``finish()`` refuses the keys no
getter took. The daemon turns an OptionError into ``file:line: key: reason``; a sink's
:class:`Options` raises :class:`SinkConfigError`, the subclass that names the sink.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar, overload

__all__ = ["REQUIRED", "OptionError", "OptionReader", "Options", "SinkConfigError", "parse_size"]

#: the default of a required option (a getter given no default raises when the key is absent)
REQUIRED: Any = object()
T = TypeVar("T")
_SIZE = re.compile(r"\A\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)\s*\Z")
_UNITS = {"B": 1, "KB": 10**3, "KiB": 2**10, "MB": 10**6, "MiB": 2**20, "GB": 10**9, "GiB": 2**30}


def parse_size(value: Any) -> int | None:
    """Bytes for a size written with a unit (``512MiB``, ``1GB``, ``10 KB``); None otherwise."""
    match = _SIZE.match(value) if isinstance(value, str) else None
    return int(match[1]) * _UNITS[match[2]] if match else None


def _range(minimum: float | None, maximum: float | None) -> str:
    if minimum is not None and maximum is not None:
        return f" from {minimum:g} to {maximum:g}"
    if minimum is not None:
        return f" of at least {minimum:g}"
    return "" if maximum is None else f" of at most {maximum:g}"


class OptionError(Exception):
    """A setting is missing or wrong: ``key`` (dotted; None: the whole section) and ``reason``."""

    def __init__(self, key: str | None, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}" if key else reason)


class SinkConfigError(OptionError):
    """A sink option is missing or wrong; ``key`` is the option's name (None: the whole sink)."""

    def __init__(self, sink: str, key: str | None, reason: str) -> None:
        self.sink = sink
        OptionError.__init__(self, key, reason)
        where = f"sink {sink!r}" + (f", option {key!r}" if key else "")
        Exception.__init__(self, f"{where}: {reason}")


class OptionReader:
    """A typed, checked view of one mapping of settings; every getter consumes its key.

    ``example`` (such as ``{max_bytes: 100MiB}``) is quoted when the mapping or a required key
    is missing.
    """

    #: keys taken for granted: never refused by ``finish()`` nor listed as valid.
    IMPLICIT: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, values: Mapping[str, Any], *, example: str | None = None) -> None:
        self._values = dict(values)
        self._known: set[str] = set(self.IMPLICIT)
        self.example = example

    def error(self, key: str | None, reason: str) -> OptionError:
        """Build the error for ``key`` (to raise from the caller's own checks)."""
        return OptionError(key, reason)

    def _note(self, key: str, kind: str, default: Any, choices: Sequence[str] = ()) -> None:
        """A getter is about to read ``key`` (``logfan sinks`` listens here to list options)."""

    def _take(self, key: str, default: Any) -> Any:
        self._known.add(key)
        if key in self._values:
            return self._values[key]
        if default is REQUIRED:
            hint = f", as in {self.example}" if self.example else ""
            raise self.error(key, f"this option is required{hint}")
        return default

    def _given(
        self, key: str, kind: str, default: Any, choices: Sequence[str] = ()
    ) -> tuple[bool, Any]:
        """Note and take ``key``: ``(True, its value)`` when set, else ``(False, default)``."""
        self._note(key, kind, default, choices)
        value = self._take(key, default)
        return not (value is default and key not in self._values), value

    def has(self, key: str) -> bool:
        """Whether ``key`` is set (it is not consumed)."""
        return key in self._values

    @overload
    def get_str(self, key: str) -> str: ...
    @overload
    def get_str(self, key: str, default: T) -> str | T: ...

    def get_str(self, key: str, default: Any = REQUIRED) -> Any:
        """A non-empty string option."""
        given, value = self._given(key, "text", default)
        if not given:
            return value
        if not isinstance(value, str) or not value:
            raise self.error(key, f"expected a non-empty string, got {value!r}")
        return value

    @overload
    def get_choice(self, key: str, choices: Iterable[str]) -> str: ...
    @overload
    def get_choice(self, key: str, choices: Iterable[str], default: T) -> str | T: ...

    def get_choice(self, key: str, choices: Iterable[str], default: Any = REQUIRED) -> Any:
        """A string option that must be one of ``choices``."""
        allowed = list(choices)
        given, value = self._given(key, "one of " + ", ".join(allowed), default, allowed)
        if not given:
            return value
        if value not in allowed:
            raise self.error(key, f"expected one of {', '.join(allowed)}; got {value!r}")
        return value

    @overload
    def get_int(
        self, key: str, *, minimum: int | None = None, maximum: int | None = None, unit: str = ""
    ) -> int: ...
    @overload
    def get_int(
        self,
        key: str,
        default: T,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        unit: str = "",
    ) -> int | T: ...

    def get_int(
        self,
        key: str,
        default: Any = REQUIRED,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        unit: str = "",
    ) -> Any:
        """A whole number within ``[minimum, maximum]`` (``unit``, e.g. "files", is named)."""
        given, value = self._given(key, "whole number" + _range(minimum, maximum), default)
        if not given:
            return value
        fits = (
            isinstance(value, int)
            and not isinstance(value, bool)
            and (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)
        )
        if not fits:
            noun = f"a whole number of {unit}" if unit else "a whole number"
            raise self.error(key, f"expected {noun}{_range(minimum, maximum)}, got {value!r}")
        return int(value)

    @overload
    def get_float(self, key: str, *, minimum: float | None = None) -> float: ...
    @overload
    def get_float(self, key: str, default: T, *, minimum: float | None = None) -> float | T: ...

    def get_float(self, key: str, default: Any = REQUIRED, *, minimum: float | None = None) -> Any:
        """A number (int or float), at least ``minimum`` if given."""
        given, value = self._given(key, "number" + _range(minimum, None), default)
        if not given:
            return value
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (minimum is not None and not value >= minimum)  # NaN is not >= anything
        ):
            raise self.error(key, f"expected a number{_range(minimum, None)}, got {value!r}")
        return float(value)

    @overload
    def get_seconds(self, key: str, *, maximum: float = 3600) -> float: ...
    @overload
    def get_seconds(self, key: str, default: T, *, maximum: float = 3600) -> float | T: ...

    def get_seconds(self, key: str, default: Any = REQUIRED, *, maximum: float = 3600) -> Any:
        """A duration in seconds, more than 0 and at most ``maximum``."""
        given, value = self._given(key, f"seconds, at most {maximum:g}", default)
        if not given:
            return value
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not 0 < value <= maximum:
            reason = f"expected seconds, more than 0 and at most {maximum:g}, got {value!r}"
            raise self.error(key, reason)
        return float(value)

    @overload
    def get_bool(self, key: str) -> bool: ...
    @overload
    def get_bool(self, key: str, default: T) -> bool | T: ...

    def get_bool(self, key: str, default: Any = REQUIRED) -> Any:
        """A true/false option."""
        given, value = self._given(key, "true or false", default)
        if not given:
            return value
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {value!r}")
        return value

    @overload
    def get_size(self, key: str) -> int: ...
    @overload
    def get_size(self, key: str, default: T) -> int | T: ...

    def get_size(self, key: str, default: Any = REQUIRED) -> Any:
        """A size in bytes: a number, or with a unit (``100MiB``, ``1GB``); at least 1."""
        given, value = self._given(key, "size (100MiB, 1GB)", default)
        if not given:
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return int(value)
        size = parse_size(value)
        if size is None or size < 1:
            reason = f"expected a size like 100MiB, 1GB or a number of bytes, got {value!r}"
            raise self.error(key, reason)
        return size

    def get_mode(self, key: str, default: int) -> int:
        """A file mode written in octal (``0640``, ``"0640"``, ``640``).

        YAML turns ``0640`` into 416 and ``640`` into 640; the config loader keeps each integer's
        source text in ``source_text`` so both mean 0o640 here. An int without source text
        (built in Python) is taken as the mode itself.
        """
        given, value = self._given(key, "file mode (0640)", default)
        if not given:
            return default
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
        """An option of any shape; the caller checks it itself."""
        self._note(key, "any", default)
        return self._take(key, default)

    def section(self, key: str, *, example: str) -> OptionReader | None:
        """The mapping under ``key`` as a reader of its own (None when absent).

        Its errors name ``key.option`` and are raised as this reader's errors.
        """
        self._note(key, f"mapping like {example}", None)
        raw = self._take(key, None)
        if raw is None:
            return None
        if not isinstance(raw, Mapping):
            raise self.error(key, f"expected a mapping like {example}, got {raw!r}")
        return _Section(self, key, raw, example)

    def finish(self) -> None:
        """Refuse keys no getter read, naming the valid ones (and the one meant, if close)."""
        unknown = sorted(str(k) for k in set(self._values) - self._known)
        if unknown:
            valid = ", ".join(sorted(self._known - self.IMPLICIT))
            meant = difflib.get_close_matches(unknown[0], sorted(self._known - {"type"}), n=1)
            hint = f"; did you mean {meant[0]!r}?" if meant else ""
            raise self.error(unknown[0], f"unknown option; valid options are: {valid}{hint}")


class _Section(OptionReader):
    """A nested mapping: its errors are its parent's, under ``key.``."""

    def __init__(
        self, parent: OptionReader, key: str, values: Mapping[str, Any], example: str
    ) -> None:
        super().__init__(values, example=example)
        self._parent = parent
        self._key = key

    def error(self, key: str | None, reason: str) -> OptionError:
        return self._parent.error(f"{self._key}.{key}" if key else self._key, reason)


class Options(OptionReader):
    """One sink's options, as its constructor receives them; errors are SinkConfigError.

    Getters raise :class:`SinkConfigError` naming the option and quoting the bad value.
    ``finish()`` refuses keys nobody read, listing the valid ones.
    """

    #: keys every sink accepts and the daemon reads itself (see logfan.daemon.config.sink).
    IMPLICIT: ClassVar[frozenset[str]] = frozenset(
        {
            "type",
            "max_retries",
            "max_queue",
            "max_line_bytes",
            "flush_interval",
            "queue_type",
            "scope",
            "select",
        }
    )

    def __init__(self, sink: str, values: Mapping[str, Any]) -> None:
        super().__init__(values)
        self.sink = sink

    def error(self, key: str | None, reason: str) -> SinkConfigError:
        """Build the error for ``key`` (to raise from a sink's own checks)."""
        return SinkConfigError(self.sink, key, reason)
