"""The ``syslog`` sink: sends each record as one RFC 5424 or RFC 3164 message over UDP, TCP or unix.

Choices the RFCs leave to the sender:

- MSG is UTF-8 without a BOM (the BOM is optional in RFC 5424 6.4, and rsyslog and syslog-ng
  read UTF-8 without it). MSG and header values go through ``control_filter("escape")``, so a
  record is one line for every receiver, whatever the framing; text a UTF-8 encoder refuses (lone
  surrogates) becomes U+FFFD rather than failing the batch.
- MSGID and STRUCTURED-DATA are ``-``. RFC 5424 means MSGID as the *type* of a message, while a
  record's ``msgid`` is the identity of one line and may be longer than MSGID's 32 characters:
  cutting it would make different lines look alike. It belongs in structured data once logfan has
  an enterprise number of its own (32473 is reserved for documentation by RFC 5612).
- A timestamp that is not RFC 3339 is sent as ``-`` in RFC 5424. RFC 3164 has no nil value, so
  there the time of sending is used, as RFC 3164 4.3.2 tells a relay to do.
- ``max_message_bytes`` counts the syslog message (header and MSG), not the transport framing.
"""

from __future__ import annotations

import datetime as dt
import errno
import re
import select
import socket
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from logfan.sinks.base import SEVERITIES, Options, Record, RetryableSinkError, normalize_severity
from logfan.sinks.template import control_filter, template_option

__all__ = ["SyslogSink"]

_FACILITY_NAMES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp")
_FACILITIES = {name: code for code, name in enumerate(_FACILITY_NAMES)}
_FACILITIES |= {"cron": 9, "authpriv": 10, "ftp": 11} | {f"local{i}": 16 + i for i in range(8)}
_ADDRESS_FORMS = "udp://HOST[:PORT], tcp://HOST[:PORT] or unix:///PATH (PORT defaults to 514)"
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")
_NOT_HEADER = re.compile(r"[^\x21-\x7e]")
_NOT_TAG = re.compile(r"[^A-Za-z0-9_.-]")
_TIMEOUT = 5.0
_UDP_MAX = 65507  # the largest UDP payload over IPv4
# A full local send queue loses a UDP datagram just as the network may; raising would resend
# the datagrams of the batch that did go out, for no better chance of delivery.
_UDP_TRANSIENT = frozenset({errno.ENOBUFS, errno.EAGAIN})
_escape = control_filter("escape")


@dataclass(frozen=True, slots=True)
class _Address:
    scheme: str
    host: str = ""
    port: int = 514
    path: str = ""

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def _address_option(options: Options) -> _Address:
    text: str = options.get_str("address", "unix:///dev/log")
    bad = options.error("address", f"expected {_ADDRESS_FORMS}; got {text!r}")
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError:  # a malformed [IPv6] host, a port that is not a number or above 65535
        raise bad from None
    if url.query or url.fragment or url.username is not None:
        raise bad
    if url.scheme == "unix" and not url.netloc and url.path.startswith("/"):
        return _Address("unix", path=url.path)
    if url.scheme in ("udp", "tcp") and url.hostname and url.path in ("", "/") and port != 0:
        return _Address(url.scheme, url.hostname, port or 514)
    raise bad


def _facility_option(options: Options) -> int:
    value = options.get_raw("facility", "user")
    if isinstance(value, str) and value.strip().lower() in _FACILITIES:
        return _FACILITIES[value.strip().lower()]
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 23:
        return value
    names = ", ".join(_FACILITIES)
    raise options.error("facility", f"expected a name ({names}) or a number 0-23; got {value!r}")


def _header(text: str, limit: int) -> str:
    """An RFC 5424 header field: printable US-ASCII only, at most ``limit`` long, never empty."""
    return _NOT_HEADER.sub("_", _escape(text))[:limit] or "-"


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


def _marker(count: int) -> bytes:
    return f"...[truncated {count} bytes]".encode()


def _fit(msg: bytes, room: int) -> tuple[bytes, int]:
    """``msg`` cut to ``room`` bytes, marker included, on a UTF-8 boundary; and the bytes cut."""
    if len(msg) <= room:
        return msg, 0
    # Sized for the largest count it could show, so the real marker always fits.
    keep = max(0, room - len(_marker(len(msg))))
    while keep and msg[keep] & 0xC0 == 0x80:
        keep -= 1
    cut = len(msg) - keep
    return msg[:keep] + _marker(cut), cut


def _peer_closed(sock: socket.socket) -> bool:
    """Whether a stream receiver has hung up.

    A closed TCP connection still takes one more send and loses it silently. Syslog receivers
    never talk back, so anything readable is the hang-up (or data to discard).
    """
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    if not poller.poll(0):
        return False
    try:
        return sock.recv(4096) == b""
    except OSError:
        return True


class SyslogSink:
    """Sends each record as one syslog message to ``address``; see the module docstring.

    UDP uses an unconnected socket, so no receiver means no error, as with any datagram. TCP and
    a stream unix socket get each batch as one ``sendall``; after any error the socket is closed
    and the next write reconnects. ``truncated`` counts messages cut to ``max_message_bytes``;
    ``dropped`` counts UDP datagrams lost to a full local send queue.
    """

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.address = _address_option(options)
        udp = self.address.scheme == "udp"
        self.protocol: str = options.get_choice("protocol", ("rfc5424", "rfc3164"), "rfc5424")
        self.facility = _facility_option(options)
        framing: str | None = options.get_choice("framing", ("octet-counting", "lf"), None)
        if framing is not None and udp:
            raise options.error(
                "framing", f"applies to tcp:// and unix:// only, not to {self.address}"
            )
        self.framing = framing or "octet-counting"
        self.template = template_option(options, "{message}")
        limit: int = options.get_int("max_message_bytes", 2048 if udp else 65536, minimum=480)
        if udp and limit > _UDP_MAX:
            raise options.error(
                "max_message_bytes", f"a UDP datagram holds at most {_UDP_MAX} bytes; got {limit}"
            )
        self.max_message_bytes = limit
        hostname: str | None = options.get_str("hostname", None)
        if hostname is not None and (_NOT_HEADER.search(hostname) or len(hostname) > 255):
            raise options.error(
                "hostname", f"expected up to 255 printable ASCII characters; got {hostname!r}"
            )
        self.hostname = hostname
        options.finish()
        self._local_host = _header(socket.gethostname().split(".")[0], 255)
        self.truncated = 0
        self.dropped = 0
        self._sock: socket.socket | None = None
        self._stream = False
        self._target: tuple[Any, ...] | None = None  # where UDP datagrams go, once resolved

    def _error(self, action: str, exc: OSError) -> RetryableSinkError:
        reason = exc.strerror or str(exc) or type(exc).__name__
        return RetryableSinkError(f"sink {self.name!r}: cannot {action} {self.address}: {reason}")

    def open(self) -> None:
        """Create the UDP socket or connect, so a wrong address shows before the first record."""
        if self._sock is None:
            self._connect()

    def _connect(self) -> socket.socket:
        address = self.address
        try:
            if address.scheme == "udp":
                sock = self._udp_socket()
            elif address.scheme == "tcp":
                sock = socket.create_connection((address.host, address.port), timeout=_TIMEOUT)
                if sock.getsockname() == sock.getpeername():
                    # TCP "self-connect": with no listener on a local port of the ephemeral
                    # range, the kernel may connect the socket to itself; every line sent
                    # would be read back by nobody and lost.
                    sock.close()
                    raise ConnectionRefusedError(errno.ECONNREFUSED, "nothing listens there")
                self._stream = True
            else:
                sock = self._unix_socket()
        except OSError as exc:
            raise self._error("connect to", exc) from exc
        self._sock = sock
        return sock

    def _udp_socket(self) -> socket.socket:
        info = socket.getaddrinfo(self.address.host, self.address.port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, target = info[0]
        sock = socket.socket(family, kind, proto)
        sock.settimeout(_TIMEOUT)
        self._target = target
        return sock

    def _unix_socket(self) -> socket.socket:
        # As logging.handlers.SysLogHandler does: /dev/log is a datagram socket for systemd and
        # most daemons but a stream one for some, and only connect() tells which.
        try:
            return _connected_unix(socket.SOCK_DGRAM, self.address.path)
        except OSError as exc:
            if exc.errno != errno.EPROTOTYPE:
                raise
        sock = _connected_unix(socket.SOCK_STREAM, self.address.path)
        self._stream = True
        return sock

    def _frame(self, record: Record) -> bytes:
        """One syslog message for ``record``, without transport framing."""
        pri = self.facility * 8 + SEVERITIES.index(normalize_severity(record.severity) or "info")
        host = _header(
            self.hostname or (self._local_host if record.host == "-" else record.host), 255
        )
        parsed = _parse_time(record.timestamp)
        if self.protocol == "rfc5424":
            stamp = parsed[0] if parsed else "-"
            tag, pid = _header(record.tag, 48), _header(record.pid, 128)
            head = f"<{pri}>1 {stamp} {host} {tag} {pid} - - "
        else:
            pid = "" if record.pid == "-" else f"[{_bsd_token(record.pid, 128)}]"
            stamp = _bsd_time(parsed[1] if parsed else None)
            head = f"<{pri}>{stamp} {host} {_bsd_token(record.tag, 32)}{pid}: "
        header = head.encode("ascii")
        msg = _escape(self.template.render(record)).encode("utf-8", "replace")
        body, cut = _fit(msg, max(0, self.max_message_bytes - len(header)))
        if cut:
            self.truncated += 1
        return header + body

    def _framed(self, message: bytes) -> bytes:
        if self.framing == "lf":
            return message + b"\n"
        return b"%d %b" % (len(message), message)  # RFC 6587 octet counting

    def write(self, records: Sequence[Record]) -> None:
        """Send the batch: one ``sendall`` on a stream, one datagram per record otherwise."""
        messages = [self._frame(record) for record in records]
        if not messages:
            return
        if self._sock is not None and self._stream and _peer_closed(self._sock):
            self.close()
        sock = self._sock or self._connect()
        try:
            if self._stream:
                sock.sendall(b"".join(map(self._framed, messages)))
            else:
                self._send_datagrams(sock, messages)
        except OSError as exc:
            self.close()
            raise self._error("send to", exc) from exc

    def _send_datagrams(self, sock: socket.socket, messages: list[bytes]) -> None:
        for message in messages:
            try:
                if self._target is None:
                    sock.send(message)
                else:
                    sock.sendto(message, self._target)
            except OSError as exc:
                if self._target is None or exc.errno not in _UDP_TRANSIENT:
                    raise
                self.dropped += 1

    def flush(self) -> None:
        """Nothing to do: every write hands its bytes to the kernel before returning."""

    def close(self) -> None:
        """Close the socket; a later write opens a new one."""
        sock, self._sock, self._target, self._stream = self._sock, None, None, False
        if sock is not None:
            sock.close()


def _connected_unix(kind: socket.SocketKind, path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        sock.settimeout(_TIMEOUT)
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock
