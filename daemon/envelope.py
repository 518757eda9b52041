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
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from logfan.sinks.base import Record, normalize_severity
from logfan.sinks.batch import Block, Column, Numbered

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
    entries = lines if isinstance(lines, list | tuple) else list(lines)
    doc: dict[str, Any] = {
        "v": 1,
        "id": msg_id,
        "host": host,
        "tag": tag,
        "pid": pid,
        "severity": severity,
        "lines": entries,
    }
    try:
        return _ENCODER.encode(doc)
    except UnicodeEncodeError:  # a lone surrogate: an undecodable byte of an argument, or worse
        doc = {
            key: visible(value) if isinstance(value, str) else value for key, value in doc.items()
        }
        doc["lines"] = [[visible(text) for text in entry] for entry in entries]
        return _ENCODER.encode(doc)


def visible(text: str) -> str:
    """``text`` as UTF-8 can carry it: an undecodable byte (a surrogate escape, as in argv)
    shows as ``\\xNN``, any other lone surrogate as ``\\udNNN``."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            return text.encode("utf-8", "backslashreplace").decode("utf-8")
        return raw.decode("utf-8", "backslashreplace")
    return text


def _text(value: Any, default: str = "-") -> str:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return default


#: ``content_encoding`` values that mean the UTF-8 the daemon reads anyway
_UTF8 = frozenset({"utf-8", "utf8", "binary"})


class _Emitted(msgspec.Struct):
    """An envelope as ``logfan emit`` writes it, every line ``[timestamp, message]``: msgspec
    decodes and checks it in C. Anything else JSON allows takes the general path."""

    v: Any
    lines: list[tuple[str, str]]
    id: Any = None
    host: Any = None
    tag: Any = None
    pid: Any = None
    severity: Any = None


_EMITTED = msgspec.json.Decoder(_Emitted)
_ENCODER = msgspec.json.Encoder()


def _clean(body: bytes | str) -> bool:
    """Whether no text the JSON ``body`` holds can have a control character: it is ASCII with
    no escape (JSON escapes C0 controls) and no DEL."""
    if isinstance(body, bytes):
        return body.isascii() and b"\\" not in body and b"\x7f" not in body
    return body.isascii() and "\\" not in body and "\x7f" not in body


def _decode_envelope(body: bytes | str, default_host: str, received: str) -> Block | None:
    try:
        emitted = _EMITTED.decode(body)
    except msgspec.MsgspecError:
        return _decode_general(body, default_host, received)
    entries = emitted.lines
    if emitted.v != 1:
        return None
    columns: list[Sequence[str]] = list(zip(*entries, strict=True))
    if not entries or not all(columns[0]):  # an empty timestamp is the time of receipt
        return _decode_general(body, default_host, received)
    host, tag, severity, pid, msgids = _shared(
        functools.partial(getattr, emitted), len(entries), default_host
    )
    return Block(columns[1], columns[0], host, tag, severity, pid, msgids, clean=_clean(body))


def _shared(
    get: Callable[[str], Any], count: int, default_host: str
) -> tuple[str, str, str, str, Column]:
    """An envelope's metadata as its ``count`` lines share it, each key read with ``get``:
    host, tag, severity, pid, and the msgids ``<id>-<n>`` (``-`` without an id)."""
    base_id = _text(get("id"))
    return (
        _text(get("host"), default_host),
        _text(get("tag")),
        normalize_severity(_text(get("severity"), "info")) or "info",
        _text(get("pid")),
        Numbered(f"{base_id}-", range(count)) if base_id != "-" else "-",
    )


def _decode_general(body: bytes | str, default_host: str, received: str) -> Block | None:
    """Any JSON envelope, entries with a severity of their own and all."""
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than the C stack allows
        return None
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("lines"), list):
        return None
    entries = doc["lines"]
    host, tag, severity, pid, msgids = _shared(doc.get, len(entries), default_host)
    messages: list[str] = []
    stamps: list[str] = []
    severities: list[str] = []
    for entry in entries:
        if type(entry) is not list or len(entry) < 2 or type(entry[1]) is not str:
            return None
        stamp = entry[0]
        messages.append(entry[1])
        stamps.append(stamp if type(stamp) is str and stamp else received)
        line_severity = severity
        if len(entry) > 2:
            line_severity = normalize_severity(_text(entry[2])) or severity
        severities.append(line_severity)
    shared: Column = severity if all(s == severity for s in severities) else severities
    return Block(messages, stamps, host, tag, shared, pid, msgids)


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
    return decode_block(
        body, content_type, properties, encoding, headers=headers, host=host, received=received
    ).records()


def decode_block(
    body: bytes | str,
    content_type: str | None,
    properties: Mapping[str, Any],
    encoding: str | None = None,
    *,
    headers: Mapping[str, Any] | None = None,
    host: str = "-",
    received: float | None = None,
) -> Block:
    """``decode`` as one block (the lines by column), as the daemon's consumers take them."""
    if isinstance(body, bytes) and encoding and encoding.lower() not in _UTF8:
        # An unknown or wrong encoding: the body is read as UTF-8 below.
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            body = body.decode(encoding)
    if content_type == CONTENT_TYPE:
        block = _decode_envelope(body, host, now_timestamp(received))
        if block is not None:
            return block
    text = body if isinstance(body, str) else body.decode("utf-8", "replace")
    if text.endswith("\n"):
        text = text[:-1]
    headers = headers or {}
    timestamp = _plain_time(properties, headers) or now_timestamp(received)
    severity = normalize_severity(_text(headers.get(SEVERITY_HEADER), "info")) or "info"
    messages = text.split("\n")
    if "\r" in text:
        messages = [line.removesuffix("\r") for line in messages]
    return Block(
        messages,
        timestamp,
        _text(headers.get(HOST_HEADER), host),
        _text(properties.get("app_id")),
        severity,
        _text(headers.get(PID_HEADER)),
        _text(properties.get("message_id")),
    )


def decode_delivery(delivery: Any, host: str = "-", received: float | None = None) -> list[Record]:
    """The records a delivery (a kombu message) carries: ``decode`` of its body, content type,
    properties, headers and ``content_encoding``; ``host`` and ``received`` as for ``decode``."""
    return decode_delivery_block(delivery, host, received).records()


def decode_delivery_block(delivery: Any, host: str = "-", received: float | None = None) -> Block:
    """``decode_delivery`` as one block."""
    return decode_block(
        delivery.body,
        delivery.content_type,
        dict(delivery.properties),
        delivery.content_encoding,
        headers=delivery.headers,
        host=host,
        received=received,
    )
