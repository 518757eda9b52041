"""The ``journald`` sink: each record as one systemd journal entry, with its metadata as fields.

Choices journald leaves to the sender:

- Entries go through systemd-python's ``journal.sendv`` (the call under ``journal.send``): ``send``
  stamps CODE_FILE, CODE_LINE and CODE_FUNC from its caller, which would name this module as the
  origin of every forwarded line.
- libsystemd drops an entry without an error when ``/run/systemd/journal/socket`` does not exist
  (journald not running). The sink checks that the socket exists before and after each batch and
  raises :class:`RetryableSinkError` if it does not, so the batch is sent again once journald is
  back; every other send error (such as the stale socket a killed journald leaves) raises too.
- Values are sent as UTF-8; a character UTF-8 cannot encode (a lone surrogate) becomes U+FFFD.
  Control characters are kept by default (``control_chars: keep``): journal fields are binary-safe
  and a value with a newline is still one entry (``journalctl`` shows it as a multi-line message).
- A record's ``msgid`` is sent as LOGFAN_MSGID, not MESSAGE_ID, which journald reserves for a
  128-bit id of a message *type* (the catalog); its timestamp as LOGFAN_TIMESTAMP, since clients
  cannot set the entry's own time (journald stamps the time of arrival).
"""

from __future__ import annotations

import importlib
import os
import re
import stat
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from logfan.sinks.base import (
    SEVERITIES,
    Options,
    Record,
    RetryableSinkError,
    normalize_severity,
)
from logfan.sinks.template import CONTROL_POLICIES, Template, control_filter, template_option

__all__ = ["SOCKET_PATH", "JournaldSink"]

#: where libsystemd sends entries (fixed in ``sd_journal_sendv``).
SOCKET_PATH = "/run/systemd/journal/socket"

#: journald's rule for a field a client may set (``journal_field_valid``): at most 64 of A-Z,
#: 0-9 and ``_``, not starting with a digit or with ``_`` (those are journald's trusted fields).
_FIELD_NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_SURROGATE = re.compile("[\ud800-\udfff]")
_NOT_IN_FIELDS = {
    "MESSAGE": "it comes from 'format'",
    "PRIORITY": "it comes from the record's severity",
}
_INSTALL = (
    "the journald sink needs systemd-python: install logfan[systemd] "
    "(pip install 'logfan[systemd]'; building it needs libsystemd-dev and pkg-config)"
)


def _load_journal(options: Options) -> Any:
    """systemd-python's ``systemd.journal`` module, imported only when a journald sink is built."""
    try:
        return importlib.import_module("systemd.journal")
    except ImportError:
        raise options.error("type", _INSTALL) from None


def _fields_option(options: Options) -> dict[str, Template]:
    """Read ``fields: {NAME: template}``, checking each name against journald's rules."""
    raw = options.get_raw("fields", {})
    if not isinstance(raw, Mapping):
        raise options.error("fields", f"expected a mapping of NAME: template, got {raw!r}")
    fields: dict[str, Template] = {}
    for name, text in raw.items():
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise options.error(
                "fields",
                f"{name!r} is not a journal field name: expected 1-64 uppercase letters, digits "
                "and '_', starting with a letter (like BUILD_ID)",
            )
        if name in _NOT_IN_FIELDS:
            raise options.error("fields", f"{name} cannot be set here: {_NOT_IN_FIELDS[name]}")
        if not isinstance(text, str):
            raise options.error("fields", f"{name}: expected a template string, got {text!r}")
        try:
            fields[name] = Template(text)
        except ValueError as exc:
            raise options.error("fields", f"{name}: {exc}") from None
    return fields


def _encode(name: str, value: str) -> bytes:
    """``NAME=value`` as libsystemd sends it (it switches to the binary-safe form itself)."""
    try:
        data = value.encode("utf-8")
    except UnicodeEncodeError:
        data = _SURROGATE.sub("\ufffd", value).encode("utf-8")
    return name.encode("ascii") + b"=" + data


class JournaldSink:
    """Sends each record to the local journald as one entry (``journalctl -t TAG`` finds it)."""

    #: one line of help per option, shown by `logfan sinks journald`.
    OPTION_HELP: ClassVar[dict[str, str]] = {
        "format": "MESSAGE: a template as for files",
        "control_chars": "control characters in a line: keep (the default here), escape or strip",
        "fields": "extra journal fields, NAME: template",
    }

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self._journal = _load_journal(options)
        self.template = template_option(options, "{message}")
        self.clean: Callable[[str], str] = control_filter(
            options.get_choice("control_chars", CONTROL_POLICIES, "keep")
        )
        self.fields = _fields_option(options)
        options.finish()

    def _entry(self, record: Record) -> list[bytes]:
        """The fields of one entry; ``fields`` replace the sink's own of the same name."""
        clean = self.clean
        severity = normalize_severity(record.severity) or "info"
        values: dict[str, str] = {
            "MESSAGE": self.template.render(record, clean),
            "PRIORITY": str(SEVERITIES.index(severity)),
            # Unknown tag: name the writing program, as libsystemd itself would.
            "SYSLOG_IDENTIFIER": clean(record.tag) if record.tag != "-" else "logfan",
            "LOGFAN_TIMESTAMP": clean(record.timestamp),
            "LOGFAN_SINK": self.name,
        }
        known = {"SYSLOG_PID": record.pid, "LOGFAN_HOST": record.host, "LOGFAN_MSGID": record.msgid}
        values |= {field: clean(value) for field, value in known.items() if value != "-"}
        for field, template in self.fields.items():
            values[field] = template.render(record, clean)
        return [_encode(field, value) for field, value in values.items()]

    def _check_socket(self) -> None:
        """Raise if journald's socket is missing: libsystemd would drop the entries silently."""
        try:
            present = stat.S_ISSOCK(os.stat(SOCKET_PATH).st_mode)
        except OSError:
            present = False
        if not present:
            raise RetryableSinkError(
                f"sink {self.name!r}: journald is not running ({SOCKET_PATH} does not exist)"
            )

    def open(self) -> None:
        """Nothing to open (libsystemd keeps its own socket); fail early if journald is absent."""
        self._check_socket()

    def write(self, records: Sequence[Record]) -> None:
        """Send one entry per record; all of the batch reached journald's socket, or raise."""
        entries = [self._entry(r) for r in records]
        self._check_socket()
        for entry in entries:
            try:
                self._journal.sendv(*entry)
            except OSError as exc:
                msg = f"sink {self.name!r}: cannot send to journald at {SOCKET_PATH}: {exc}"
                raise RetryableSinkError(msg) from exc
        # The socket may have gone during the batch; what was sent after that was dropped.
        self._check_socket()

    def flush(self) -> None:
        """Each entry was handed to journald's socket by ``write``; nothing is buffered here."""

    def close(self) -> None:
        """Nothing to close: libsystemd's socket belongs to the process."""
