"""The ``syslog`` sink: each record as one RFC 5424 or RFC 3164 message over UDP, TCP, TLS or unix.

The message itself is built by :mod:`logfan.sinks.syslog.message` (which says what the RFCs leave
to the sender and what logfan chose), the socket is kept by :mod:`logfan.sinks.syslog.transport`.
This module reads the options and turns every socket or TLS failure into a
:class:`RetryableSinkError` that says why, so the batch stays queued until the target is back.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from typing import ClassVar

from logfan.sinks.base import Options, Record, RetryableSinkError
from logfan.sinks.syslog.message import MessageBuilder, check_sd_id, header_field
from logfan.sinks.syslog.transport import (
    ADDRESS_FORMS,
    Address,
    Transport,
    parse_address,
    tls_context,
)
from logfan.sinks.template import template_option

__all__ = ["SyslogSink"]

_FACILITY_NAMES = ("kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp")
_FACILITIES = {name: code for code, name in enumerate(_FACILITY_NAMES)}
_FACILITIES |= {"cron": 9, "authpriv": 10, "ftp": 11} | {f"local{i}": 16 + i for i in range(8)}
_FRAMINGS = ("octet-counting", "lf")
_TLS_OPTIONS = ("ca_file", "cert_file", "key_file", "server_name")
_UDP_MAX = 65507  # the largest UDP payload over IPv4


def _address_option(options: Options) -> Address:
    text: str = options.get_str("address", "unix:///dev/log")
    address = parse_address(text)
    if address is None:
        raise options.error("address", f"expected {ADDRESS_FORMS}; got {text!r}")
    return address


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


def _limit_option(options: Options, address: Address) -> int:
    udp = address.scheme == "udp"
    limit: int = options.get_int("max_message_bytes", 2048 if udp else 65536, minimum=480)
    if udp and limit > _UDP_MAX:
        raise options.error(
            "max_message_bytes", f"a UDP datagram holds at most {_UDP_MAX} bytes; got {limit}"
        )
    return limit


def _hostname_option(options: Options) -> str | None:
    hostname: str | None = options.get_str("hostname", None)
    if hostname is not None and (header_field(hostname, 255) != hostname):
        raise options.error(
            "hostname", f"expected up to 255 printable ASCII characters; got {hostname!r}"
        )
    return hostname


def _sd_id_option(options: Options) -> str | None:
    sd_id: str | None = options.get_str("sd_id", None)
    if sd_id is not None and (why := check_sd_id(sd_id)) is not None:
        raise options.error("sd_id", f"{why}; got {sd_id!r}")
    return sd_id


def _tls_option(options: Options, address: Address) -> tuple[ssl.SSLContext | None, str | None]:
    files = {key: options.get_str(key, None) for key in _TLS_OPTIONS}
    given = [key for key, value in files.items() if value is not None]
    if address.scheme != "tls":
        if given:
            raise options.error(given[0], f"applies to tls:// only, not to {address}")
        return None, None
    if files["key_file"] is not None and files["cert_file"] is None:
        raise options.error("key_file", "needs cert_file too")
    key = "ca_file"
    try:
        context = tls_context(files["ca_file"])
        key = "cert_file"
        if files["cert_file"] is not None:
            context.load_cert_chain(files["cert_file"], files["key_file"])
    except OSError as exc:  # ssl.SSLError included
        reason = exc.strerror or str(exc)
        raise options.error(key, f"cannot use {files[key]!r}: {reason}") from None
    return context, files["server_name"]


def _tls_reason(exc: ssl.SSLError) -> str:
    """Why a TLS handshake failed, in the words an operator searches for."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        detail = str(exc.verify_message or exc.reason or exc)
        if detail.lower().startswith("hostname mismatch"):
            return f"TLS hostname mismatch: {detail.split(', ', 1)[-1]}"
        return f"TLS certificate verify failed: {detail}"
    return f"TLS failed: {exc.reason or exc}"


class SyslogSink:
    """Sends each record as one syslog message to ``address``; see the module docstring.

    UDP uses a connected socket, yet no receiver means no error, as with any datagram. TCP, TLS
    and a stream unix socket get each batch as one ``sendall``; after any error the socket is
    closed and the next write reconnects. ``truncated`` counts messages cut to
    ``max_message_bytes``; ``dropped`` counts UDP datagrams lost to a full local send queue.
    """

    #: one line of help per option, shown by `logfan sinks syslog`.
    OPTION_HELP: ClassVar[dict[str, str]] = {
        "address": "udp://, tcp://, tls://HOST[:PORT] or unix:///PATH",
        "protocol": "RFC 5424, or RFC 3164 (the local form on a unix socket)",
        "facility": "a name (kern ... local7) or 0-23",
        "framing": "octet-counting (tcp, tls) or lf (a stream unix socket); not for udp",
        "format": "the MSG part: a template as for files",
        "max_message_bytes": "header and MSG at most; 2048 over udp; longer ones end with a marker",
        "hostname": "HOSTNAME of every message (default: the line's host, else this machine)",
        "sd_id": "send each line's metadata as structured data under this NAME@PEN",
        "ca_file": "tls: the CA certificates that sign the receiver's",
        "cert_file": "tls: a client certificate",
        "key_file": "tls: the client certificate's key, unless in cert_file",
        "server_name": "tls: the name the receiver's certificate must carry",
    }

    def __init__(self, name: str, options: Options) -> None:
        self.name = name
        self.address = _address_option(options)
        self.protocol: str = options.get_choice("protocol", ("rfc5424", "rfc3164"), "rfc5424")
        self.facility = _facility_option(options)
        framing: str | None = options.get_choice("framing", _FRAMINGS, None)
        if framing is not None and self.address.scheme == "udp":
            raise options.error(
                "framing", f"applies to tcp://, tls:// and unix:// only, not to {self.address}"
            )
        # TCP receivers expect octet counting (RFC 6587, RFC 5425); the stream /dev/log readers
        # (syslog-ng's unix-stream(), the system() source) read one message per line.
        self.framing = framing or "octet-counting"
        template = template_option(options, "{message}")
        self.max_message_bytes = _limit_option(options, self.address)
        self.hostname = _hostname_option(options)
        self.sd_id = _sd_id_option(options)
        context, server_name = _tls_option(options, self.address)
        options.finish()
        self._builder = MessageBuilder(
            protocol=self.protocol,
            facility=self.facility,
            template=template,
            max_message_bytes=self.max_message_bytes,
            hostname=self.hostname,
            sd_id=self.sd_id,
            local=self.address.scheme == "unix",
        )
        self._transport = Transport(
            self.address,
            framing=self.framing,
            framing_unix=framing or "lf",
            context=context,
            server_name=server_name,
        )

    @property
    def truncated(self) -> int:
        """Messages cut to ``max_message_bytes`` so far."""
        return self._builder.truncated

    @property
    def dropped(self) -> int:
        """UDP datagrams lost to a full local send queue so far."""
        return self._transport.dropped

    def _error(self, action: str, exc: OSError) -> RetryableSinkError:
        if isinstance(exc, ssl.SSLError):
            reason = _tls_reason(exc)
            return RetryableSinkError(f"{reason} (sink {self.name!r}, {self.address})")
        reason = exc.strerror or str(exc) or type(exc).__name__
        return RetryableSinkError(f"sink {self.name!r}: cannot {action} {self.address}: {reason}")

    def open(self) -> None:
        """Create the UDP socket or connect, so a wrong address shows before the first record."""
        if not self._transport.connected:
            try:
                self._transport.connect()
            except OSError as exc:
                raise self._error("connect to", exc) from exc

    def write(self, records: Sequence[Record]) -> None:
        """Send the batch: one ``sendall`` on a stream, one datagram per record otherwise."""
        messages = self._builder.build_many(records)
        if not messages:
            return
        action = "send to" if self._transport.connected else "connect to"
        try:
            self._transport.send(messages)
        except OSError as exc:
            raise self._error(action, exc) from exc

    def flush(self) -> None:
        """On a stream, wait until the receiver has taken every byte written (its TCP stack
        acknowledged them); a receiver that stops reading is a retryable error, the socket
        closed. A datagram is delivered once sent."""
        try:
            self._transport.wait_taken()
        except OSError as exc:
            raise self._error("send to", exc) from exc

    def close(self) -> None:
        """Close the socket; a later write opens a new one."""
        self._transport.close()
