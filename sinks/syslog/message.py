"""Syslog messages for the ``syslog`` sink: RFC 5424 and RFC 3164 headers, structured data, size.

Choices the RFCs leave to the sender:

- MSG is UTF-8 without a BOM (the BOM is optional in RFC 5424 6.4, and rsyslog and syslog-ng
  read UTF-8 without it). MSG, header and SD-PARAM values go through ``control_filter("escape")``,
  so a record is one line for every receiver, whatever the framing; text a UTF-8 encoder refuses
  (lone surrogates) becomes U+FFFD rather than failing the batch.
- MSGID is ``-``. RFC 5424 means MSGID as the *type* of a message, while a record's ``msgid``
  identifies one line and may be longer than MSGID's 32 characters: cutting it would make
  different lines look alike. It travels in structured data instead.
- STRUCTURED-DATA is ``-`` unless the sink has an ``sd_id``. RFC 5424 7.2.2 reserves SD-IDs
  without ``@`` for IANA; a private one is ``name@PEN`` with the *sender's organisation's*
  enterprise number. logfan has none, so it claims none: the operator names the SD-ID, which
  then carries the record's own ``host``, ``tag``, ``pid``, ``msgid`` and ``timestamp`` verbatim
  (the header may have cut or replaced them to fit the RFC).
- RFC 3164 to a unix socket (``/dev/log``) is the local dialect glibc's syslog(3) and logger(1)
  write: ``<PRI>TIMESTAMP TAG[PID]: MSG``, no HOSTNAME, so journald, rsyslog's imuxsock and
  syslog-ng's system() source take TAG and PID as the identifier and the process id.
- A timestamp that is not RFC 3339 is sent as ``-`` in RFC 5424. RFC 3164 has no nil value, so
  there the time of sending is used, as RFC 3164 4.3.2 tells a relay to do.
- ``max_message_bytes`` counts the syslog message (header and MSG), not the transport framing.
  A longer MSG is cut on a character boundary and ends with ``...[truncated N bytes]``.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
from collections.abc import Iterator, Sequence
from itertools import groupby

from logfan.sinks.base import SEVERITIES, Record, normalize_severity
from logfan.sinks.batch import Batch, Block
from logfan.sinks.template import Template, control_filter, join_lines
from logfan.sinks.truncation import truncate_bytes

__all__ = ["MessageBuilder", "check_sd_id", "header_field"]

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")
_NOT_HEADER = re.compile(r"[^\x21-\x7e]")
_NOT_TAG = re.compile(r"[^A-Za-z0-9_.-]")
_SD_ID = re.compile(r"[\x21-\x7e]{1,32}")
_PRIVATE_SD_ID = re.compile(r'[^@=\]" ]+@\d+(\.\d+)*')
_SD_VALUE = str.maketrans({'"': '\\"', "\\": "\\\\", "]": "\\]"})
#: the record fields sent as SD-PARAMs, each under its own name.
SD_PARAMS: tuple[str, ...] = ("host", "tag", "pid", "msgid", "timestamp")
_SD_VALUE_MAX = 255  # characters per SD-PARAM value, so structured data cannot crowd out MSG
_escape = control_filter("escape")


def header_field(text: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII only, at most ``limit`` long, never empty."""
    return _NOT_HEADER.sub("_", _escape(text))[:limit] or "-"


def check_sd_id(text: str) -> str | None:
    """Why ``text`` is not a private SD-ID (``name@PEN``, RFC 5424 7.2.2), or None if it is."""
    if not _SD_ID.fullmatch(text) or not _PRIVATE_SD_ID.fullmatch(text):
        return (
            "expected a private SD-ID NAME@PEN (up to 32 printable ASCII characters, no "
            "'=', ']', '\"' or space, PEN your organisation's IANA enterprise number)"
        )
    return None


def _bsd_token(text: str, limit: int) -> str:
    """An RFC 3164 TAG or PID: letters, digits and ``-_.``, at most ``limit`` long."""
    return _NOT_TAG.sub("_", text)[:limit] or "-"


def _parse_time(text: str) -> tuple[str, dt.datetime] | None:
    """The RFC 5424 TIMESTAMP for ``text`` (fraction cut to 6 digits) and its moment, or None."""
    match = _RFC3339.fullmatch(text.strip().upper())
    if match is None:
        return None
    stamp = match[1] + (match[2] or "")[:7] + match[3]
    try:
        return stamp, dt.datetime.fromisoformat(stamp)
    except ValueError:  # month 13, second 60 and the like
        return None


def _bsd_time(when: dt.datetime | None) -> str:
    """``Mmm dd hh:mm:ss`` in local time; month names fixed in English whatever the locale."""
    try:
        local = (when or dt.datetime.now(dt.UTC)).astimezone()
    except (OverflowError, ValueError):  # a moment in year 1 or 9999 that local time cannot hold
        local = dt.datetime.now(dt.UTC).astimezone()
    return f"{_MONTHS[local.month - 1]} {local.day:2d} {local:%H:%M:%S}"


def _structured_data(sd_id: str | None, record: Record) -> str:
    if sd_id is None:
        return "-"
    params = []
    for name in SD_PARAMS:
        value: str = getattr(record, name)
        if value != "-":
            params.append(f'{name}="{_escape(value)[:_SD_VALUE_MAX].translate(_SD_VALUE)}"')
    return f"[{' '.join([sd_id, *params])}]"


def _runs(stamps: str | Sequence[str], count: int) -> Iterator[tuple[str, int, int]]:
    """``(stamp, start, end)`` for each run of lines that share a time: the lines of one read of
    the emitter do, so a block has few runs."""
    if isinstance(stamps, str):
        yield stamps, 0, count
        return
    start = 0
    for stamp, run in groupby(stamps):
        end = start + sum(1 for _ in run)
        yield stamp, start, end
        start = end


class MessageBuilder:
    """Turns a record into one syslog message (bytes, without transport framing).

    ``truncated`` counts the messages whose MSG was cut to fit ``max_message_bytes``.
    """

    def __init__(
        self,
        *,
        protocol: str,
        facility: int,
        template: Template,
        max_message_bytes: int,
        hostname: str | None = None,
        sd_id: str | None = None,
        local: bool = False,
    ) -> None:
        self.protocol = protocol
        self.facility = facility
        self.template = template
        self.max_message_bytes = max_message_bytes
        self.hostname = hostname
        #: RFC 3164 to a local socket (/dev/log) in glibc's syslog(3) form, without HOSTNAME.
        self.local = local
        self.sd_id = sd_id
        self.truncated = 0
        self._local_host = header_field(socket.gethostname().split(".")[0], 255)
        self._headers: dict[tuple[str, str, str, str, str], bytes] = {}

    def build(self, record: Record) -> bytes:
        """The message for ``record``: header, then MSG cut to fit with a visible marker."""
        msg = _escape(self.template.render(record)).encode("utf-8", "replace")
        return self._fit(self._header(record), msg)

    def build_many(self, records: Sequence[Record]) -> list[bytes]:
        """The messages for ``records``, in order: ``build`` of each, but a :class:`Batch` a
        block at a time, its lines rendered, escaped, encoded and joined to their headers in
        C loops rather than one record at a time."""
        if not isinstance(records, Batch) or self.sd_id is not None:
            return [self.build(record) for record in records]
        out: list[bytes] = []
        for block in records.blocks:
            out += self._build_block(block)
        return out

    def _build_block(self, block: Block) -> list[bytes]:
        """The block's messages, a run of lines with one time at once; each line on its own
        when the lines do not share their other header fields or a message must be cut."""
        if block.shared("host", "tag", "pid", "severity"):
            out = self._joined(block)
            if max(map(len, out)) <= self.max_message_bytes:
                return out
        return [self.build(record) for record in block.records()]

    def _joined(self, block: Block) -> list[bytes]:
        lines = self.template.render_block(block)
        clean = block.clean and self.template.clean
        host, tag, pid, severity = (str(block.field(n)) for n in ("host", "tag", "pid", "severity"))
        out: list[bytes] = []
        for stamp, start, end in _runs(block.field("timestamp"), len(lines)):
            header = self._header(Record("", stamp, host, tag, severity, pid))
            text = join_lines(lines[start:end], "escape", clean=clean).encode("utf-8", "replace")
            # Escaped, the text holds an LF only between two lines: each gets its header there.
            out += (header + text.replace(b"\n", b"\n" + header)).split(b"\n")
        return out

    def _fit(self, header: bytes, msg: bytes) -> bytes:
        body, cut = truncate_bytes(msg, max(0, self.max_message_bytes - len(header)))
        if cut:
            self.truncated += 1
        return header + body

    def _header(self, record: Record) -> bytes:
        """The header, computed once per (time, host, tag, pid, severity): the lines of one
        envelope share all five, so a batch builds few headers. With structured data (which
        carries each line's own msgid) or a time that does not parse (RFC 3164 then uses the
        time of sending), it is built every time."""
        key = (record.timestamp, record.host, record.tag, record.pid, record.severity)
        header = self._headers.get(key)
        if header is not None:
            return header
        if self.protocol == "rfc5424":
            header = self._rfc5424_header(record)
        else:
            header = self._rfc3164_header(record)
        if self.sd_id is None and _parse_time(record.timestamp) is not None:
            if len(self._headers) >= 1024:
                self._headers.clear()
            self._headers[key] = header
        return header

    def _pri(self, record: Record) -> int:
        return self.facility * 8 + SEVERITIES.index(normalize_severity(record.severity) or "info")

    def _host(self, record: Record) -> str:
        if self.hostname:
            return self.hostname
        return self._local_host if record.host == "-" else header_field(record.host, 255)

    def _rfc5424_header(self, record: Record) -> bytes:
        parsed = _parse_time(record.timestamp)
        stamp = parsed[0] if parsed else "-"
        tag, pid = header_field(record.tag, 48), header_field(record.pid, 128)
        head = f"<{self._pri(record)}>1 {stamp} {self._host(record)} {tag} {pid} -"
        sd = _structured_data(self.sd_id, record).encode("utf-8", "replace")
        # Structured data is metadata: it never takes the room the message itself needs.
        if len(head) + len(sd) + 2 > self.max_message_bytes // 2:
            sd = b"-"
        return head.encode("ascii") + b" " + sd + b" "

    def _rfc3164_header(self, record: Record) -> bytes:
        parsed = _parse_time(record.timestamp)
        pid = "" if record.pid == "-" else f"[{_bsd_token(record.pid, 128)}]"
        stamp = _bsd_time(parsed[1] if parsed else None)
        host = "" if self.local else f"{self._host(record)} "
        tag = _bsd_token(record.tag, 32)
        return f"<{self._pri(record)}>{stamp} {host}{tag}{pid}: ".encode("ascii")
