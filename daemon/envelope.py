"""The wire format: logfan's JSON envelope (many lines per message) and plain text from anyone.

Envelope, content type ``application/vnd.logfan.v1+json``, UTF-8 JSON::

    {"v": 1, "id": "5f0c...", "host": "web1", "tag": "build", "pid": 4242, "severity": "info",
     "lines": [["2026-11-27T06:12:59.123Z", "first line"],
               ["2026-11-27T06:12:59.124Z", "second line", "err"]]}

Each entry of ``lines`` is ``[timestamp, message]`` or ``[timestamp, message, severity]``.
The n-th line's message id is ``<id>-<n>``. Any other body (any content type) is taken as
UTF-8 text, invalid bytes replaced with U+FFFD, one record per line; its metadata comes from
the AMQP properties where present (``app_id`` as tag, ``message_id``, ``timestamp``) and from
the headers ``logfan emit --plain`` sets (``timestamp_in_ms``, ``logfan-host``, ``logfan-pid``,
``logfan-severity``).

Where the message says nothing, every sink must still show the same: a line without a host gets
the receiving daemon's host name (``host=``), one without a time the time its consumer took
the message from the queue (``received=``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

from logfan.sinks.base import Record, normalize_severity

CONTENT_TYPE = "application/vnd.logfan.v1+json"
#: what ``logfan emit --plain`` publishes: one line per message, as the RabbitMQ tutorial does.
PLAIN_CONTENT_TYPE = "text/plain"
#: the line's time in milliseconds since the epoch (an int). The name is the one RabbitMQ's
#: timestamp plugin (3.6 to 3.11) and its ``set_header_timestamp`` message interceptor (3.12 and
#: later) give the time a message entered the broker, so a broker that stamps arrival gives
#: every sink that one time.
TIME_HEADER = "timestamp_in_ms"
HOST_HEADER = "logfan-host"
PID_HEADER = "logfan-pid"
SEVERITY_HEADER = "logfan-severity"
#: builds a Record from a 7-tuple in C (the named tuple's own ``__new__`` is a Python function).
_new_record = functools.partial(tuple.__new__, Record)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def now_timestamp(at: float | None = None) -> str:
    """RFC 3339 UTC with milliseconds: ``2026-11-27T06:12:59.123Z``."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def ms_timestamp(ms: int) -> str:
    """``now_timestamp`` of a time in whole milliseconds, computed without a float."""
    seconds, rest = divmod(ms, 1000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{rest:03d}Z"


def timestamp_ms(stamp: str) -> int | None:
    """Milliseconds since the epoch of an RFC 3339 timestamp (``now_timestamp``'s), or None."""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // _MILLISECOND


def encode(
    lines: Iterable[Sequence[str]],
    *,
    msg_id: str,
    host: str,
    tag: str,
    pid: int,
    severity: str,
) -> bytes:
    """One envelope for ``lines``: ``(timestamp, message[, severity])`` each."""
    doc = {
        "v": 1,
        "id": msg_id,
        "host": host,
        "tag": tag,
        "pid": pid,
        "severity": severity,
        "lines": [list(pair) for pair in lines],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode(
        "utf-8", "surrogateescape"
    )


def _text(value: Any, default: str = "-") -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return default


#: ``content_encoding`` values that mean the UTF-8 the daemon reads anyway
_UTF8 = frozenset({"utf-8", "utf8", "binary"})


def _decode_envelope(body: bytes | str, default_host: str, received: str) -> list[Record] | None:
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the C stack allows
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("lines"), list):
        return None
    base_id = _text(doc.get("id"))
    host, tag, pid = (
        _text(doc.get("host"), default_host),
        _text(doc.get("tag")),
        _text(doc.get("pid")),
    )
    severity = normalize_severity(_text(doc.get("severity"), "info")) or "info"
    prefix = None if base_id == "-" else f"{base_id}-"
    fast = _fast_records(doc["lines"], prefix, host=host, tag=tag, severity=severity, pid=pid)
    if fast is not None:
        return fast
    records = []
    for n, entry in enumerate(doc["lines"]):
        if type(entry) is not list or len(entry) < 2 or type(entry[1]) is not str:
            return None
        stamp = entry[0]
        if type(stamp) is not str or not stamp:
            stamp = received
        line_severity = severity
        if len(entry) > 2:
            line_severity = normalize_severity(_text(entry[2])) or severity
        msgid = prefix + str(n) if prefix else "-"
        records.append(Record(entry[1], stamp, host, tag, line_severity, pid, msgid))
    return records


def _fast_records(
    entries: list[Any], prefix: str | None, *, host: str, tag: str, severity: str, pid: str
) -> list[Record] | None:
    """The records of an envelope whose every entry is ``[timestamp, message]`` with both
    non-empty strings (what ``logfan emit`` sends), built without a Python loop per line;
    None for anything else (the general path then checks and fills in each entry)."""
    if not entries or set(map(type, entries)) != {list} or set(map(len, entries)) != {2}:
        return None
    stamps, messages = zip(*entries, strict=True)
    if set(map(type, stamps)) != {str} or set(map(type, messages)) != {str} or not all(stamps):
        return None
    count = len(entries)
    msgids: Iterable[str] = (
        map(prefix.__add__, map(str, range(count))) if prefix else repeat("-", count)
    )
    rows = zip(messages, stamps, repeat(host), repeat(tag), repeat(severity), repeat(pid), msgids)
    return list(map(_new_record, rows))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _plain_time(properties: Mapping[str, Any], headers: Mapping[str, Any]) -> str | None:
    """The time a plain-text message gives: its ``timestamp_in_ms`` header (milliseconds),
    else its ``timestamp`` property (seconds); None when it gives none (or one out of range)."""
    ms = _int(headers.get(TIME_HEADER))
    if ms is not None:
        with contextlib.suppress(OverflowError, ValueError, OSError):
            return ms_timestamp(ms)
    stamp = properties.get("timestamp")
    if isinstance(stamp, datetime):
        if stamp.tzinfo is None:  # py-amqp hands the AMQP timestamp over as naive UTC
            stamp = stamp.replace(tzinfo=UTC)
        stamp = stamp.timestamp()
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        with contextlib.suppress(OverflowError, ValueError, OSError):
            return now_timestamp(stamp)
    return None


def decode(
    body: bytes | str,
    content_type: str | None,
    properties: Mapping[str, Any],
    encoding: str | None = None,
    *,
    headers: Mapping[str, Any] | None = None,
    host: str = "-",
    received: float | None = None,
) -> list[Record]:
    """The records a message carries; never raises: what is not an envelope is text.

    The body is text already when the publisher set ``content_encoding`` (kombu and Celery do)
    and it came over AMQP: py-amqp decodes it with that encoding. Other transports hand over
    bytes; ``encoding`` (the message's ``content_encoding``) is then used, UTF-8 by default.
    ``host`` is the host of a line whose message names none (the receiving daemon's);
    ``received`` (seconds since the epoch, now by default) the time of a line without one.
    """
    if isinstance(body, bytes) and encoding and encoding.lower() not in _UTF8:
        # An unknown or wrong encoding: the body is read as UTF-8 below.
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            body = body.decode(encoding)
    if content_type == CONTENT_TYPE:
        records = _decode_envelope(body, host, now_timestamp(received))
        if records is not None:
            return records
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    if text.endswith("\n"):
        text = text[:-1]
    headers = headers or {}
    timestamp = _plain_time(properties, headers) or now_timestamp(received)
    severity = normalize_severity(_text(headers.get(SEVERITY_HEADER), "info")) or "info"
    meta = (
        _text(headers.get(HOST_HEADER), host),
        _text(properties.get("app_id")),
        severity,
        _text(headers.get(PID_HEADER)),
        _text(properties.get("message_id")),
    )
    return [Record(line.removesuffix("\r"), timestamp, *meta) for line in text.split("\n")]


def decode_delivery(delivery: Any, host: str = "-", received: float | None = None) -> list[Record]:
    """The records a delivery (a kombu message) carries: ``decode`` of its body, content type,
    properties, headers and ``content_encoding``; ``host`` and ``received`` as for ``decode``."""
    return decode(
        delivery.body,
        delivery.content_type,
        dict(delivery.properties),
        delivery.content_encoding,
        headers=delivery.headers,
        host=host,
        received=received,
    )
