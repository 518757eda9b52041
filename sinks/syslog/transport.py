"""Where the ``syslog`` sink sends: addresses, and the UDP, TCP, TLS and unix socket transports.

A stream transport (TCP, TLS, a stream unix socket) frames each message (RFC 6587 octet counting
or a trailing LF) and sends a whole batch with one ``sendall``. Syslog receivers never answer,
so before each batch a stream transport reads what is readable: a hang-up found there makes it
reconnect instead of losing the batch to a socket the peer already closed (the same check
rsyslog makes). ``sendall`` returns once the kernel holds the bytes, not once the receiver has
them: ``wait_taken`` then waits until the socket's queue of unsent and unacknowledged bytes
(SIOCOUTQ) is empty, that is until the receiver's TCP stack (or, on a unix socket, the reader)
took them, at most ``TAKE_TIMEOUT`` seconds. Every failure is an ``OSError``; the sink turns it
into a retryable error.
"""

from __future__ import annotations

import errno
import fcntl
import socket
import ssl
import struct
import termios
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ADDRESS_FORMS", "Address", "Transport", "parse_address", "tls_context"]

ADDRESS_FORMS = (
    "udp://HOST[:PORT], tcp://HOST[:PORT], tls://HOST[:PORT] or unix:///PATH "
    "(PORT defaults to 514, 6514 for tls)"
)
_TIMEOUT = 5.0
#: how long a receiver may take to acknowledge a batch before it counts as not reading; well
#: under the watchdog's limit for a consumer loop that does not go round (15 s with the unit's
#: WatchdogSec=30s).
TAKE_TIMEOUT = 10.0
# A full local send queue loses a UDP datagram just as the network may; raising would resend
# the datagrams of the batch that did go out, for no better chance of delivery.
_UDP_TRANSIENT = frozenset({errno.ENOBUFS, errno.EAGAIN})


@dataclass(frozen=True, slots=True)
class Address:
    """A parsed ``address`` option."""

    scheme: str
    host: str = ""
    port: int = 514
    path: str = ""

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def parse_address(text: str) -> Address | None:
    """The address ``text`` names, or None if it is not one of :data:`ADDRESS_FORMS`."""
    try:
        url = urllib.parse.urlsplit(text)
        port = url.port
    except ValueError:  # a malformed [IPv6] host, a port that is not a number or above 65535
        return None
    if url.query or url.fragment or url.username is not None:
        return None
    if url.scheme == "unix" and not url.netloc and url.path.startswith("/"):
        return Address("unix", path=url.path)
    if url.scheme in ("udp", "tcp", "tls") and url.hostname and url.path in ("", "/"):
        if port == 0:
            return None
        default = 6514 if url.scheme == "tls" else 514  # RFC 5425 4.1
        return Address(url.scheme, url.hostname, port or default)
    return None


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """A client context verifying the peer and its hostname; raises OSError for an unusable CA."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # RFC 9662 updates RFC 5425 to TLS 1.2+
    return context


def _peer_closed(sock: socket.socket) -> bool:
    """Whether a stream receiver has hung up; anything it sent (a TLS ticket) is discarded."""
    timeout = sock.gettimeout()
    sock.settimeout(0.0)
    try:
        while True:
            if sock.recv(4096) == b"":
                return True
    except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
        return False
    except OSError:
        return True
    finally:
        sock.settimeout(timeout)


def _untaken(sock: socket.socket) -> int:
    """Bytes written to a stream socket that its peer has not acknowledged (or read) yet."""
    return int(struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0])


def _connected_unix(kind: socket.SocketKind, path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, kind)
    try:
        sock.settimeout(_TIMEOUT)
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


class Transport:
    """One socket to ``address``, opened on demand, closed after any error.

    ``framing`` applies to stream sockets; ``framing_unix`` to a unix socket found to be a
    stream one. ``dropped`` counts UDP datagrams lost to a full local send queue.
    """

    def __init__(
        self,
        address: Address,
        *,
        framing: str,
        framing_unix: str,
        context: ssl.SSLContext | None = None,
        server_name: str | None = None,
    ) -> None:
        self.address = address
        self.framing = framing
        self.framing_unix = framing_unix
        self.context = context
        self.server_name = server_name or address.host
        self.dropped = 0
        self.stream = False
        self._sock: socket.socket | None = None
        self._target: tuple[Any, ...] | None = None  # where UDP datagrams go, once resolved
        self._framing = framing

    @property
    def connected(self) -> bool:
        """Whether a socket is open."""
        return self._sock is not None

    def connect(self) -> None:
        """Open the socket (for TLS: connect and complete the handshake, verifying the peer)."""
        scheme = self.address.scheme
        if scheme == "udp":
            self._sock = self._udp_socket()
        elif scheme in ("tcp", "tls"):
            sock = self._tcp_socket()
            if self.context is not None:
                try:
                    sock = self.context.wrap_socket(sock, server_hostname=self.server_name)
                except BaseException:
                    sock.close()
                    raise
            self._sock, self.stream, self._framing = sock, True, self.framing
        else:
            self._sock = self._unix_socket()

    def _tcp_socket(self) -> socket.socket:
        sock = socket.create_connection((self.address.host, self.address.port), timeout=_TIMEOUT)
        if sock.getsockname() == sock.getpeername():
            # TCP "self-connect": with no listener on a local port of the ephemeral range, the
            # kernel may connect the socket to itself; every line sent would be lost.
            sock.close()
            raise ConnectionRefusedError(errno.ECONNREFUSED, "nothing listens there")
        return sock

    def _udp_socket(self) -> socket.socket:
        info = socket.getaddrinfo(self.address.host, self.address.port, type=socket.SOCK_DGRAM)
        family, kind, proto, _, target = info[0]
        sock = socket.socket(family, kind, proto)
        # Blocking, no timeout: a timeout makes Python poll() before every send, doubling the
        # system calls of the sink's hot loop; a UDP send only waits for socket buffer space.
        sock.settimeout(None)
        try:
            sock.connect(target)  # the route is looked up once, not at every datagram
        except OSError:
            sock.close()
            raise
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
        self.stream, self._framing = True, self.framing_unix
        return sock

    def _framed(self, messages: Sequence[bytes]) -> bytes:
        """``messages`` framed and joined, in C loops."""
        if self._framing == "lf":
            return b"\n".join(messages) + b"\n"
        # RFC 6587 octet counting: "LENGTH SP MESSAGE"
        return b"".join(map(b"%d %b".__mod__, zip(map(len, messages), messages, strict=True)))

    def send(self, messages: Sequence[bytes]) -> None:
        """Send ``messages``: one ``sendall`` on a stream, one datagram each otherwise.

        Raises OSError (ssl.SSLError included) with the socket closed.
        """
        if self._sock is not None and self.stream and _peer_closed(self._sock):
            self.close()
        if self._sock is None:
            self.connect()
        sock = self._sock
        if sock is None:  # connect() sets it or raises
            raise ConnectionError(errno.ENOTCONN, "not connected")
        try:
            if self.stream:
                sock.sendall(self._framed(messages))
            else:
                self._send_datagrams(sock, messages)
        except OSError:
            self.close()
            raise

    def wait_taken(self, timeout: float | None = None) -> None:
        """Return once the peer of a stream socket took every byte sent (no-op for datagrams).

        Raises TimeoutError, with the socket closed, when bytes are still unacknowledged after
        ``timeout`` seconds: the receiver stopped reading, and the batch must be sent again.
        """
        sock = self._sock
        if sock is None or not self.stream:
            return
        timeout = TAKE_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        pause = 0.00005
        while (left := _untaken(sock)) > 0:
            if time.monotonic() >= deadline:
                self.close()
                raise TimeoutError(
                    errno.ETIMEDOUT, f"the receiver did not take {left} bytes in {timeout:g} s"
                )
            time.sleep(pause)
            pause = min(pause * 2, 0.05)

    def _send_datagrams(self, sock: socket.socket, messages: Sequence[bytes]) -> None:
        udp = self._target is not None
        send = sock.send
        sent = 0
        refused = -1
        while sent < len(messages):
            try:
                # The hot loop of a UDP sink: one system call per line, nothing else.
                for message in messages[sent:]:
                    send(message)
                    sent += 1
            except OSError as exc:
                if not udp or exc.errno not in _UDP_TRANSIENT | {errno.ECONNREFUSED}:
                    raise
                if exc.errno == errno.ECONNREFUSED and refused != sent:
                    # what an earlier datagram drew (nothing listens there): this one is not
                    # sent yet, and goes again, as an unconnected socket would have sent it
                    refused = sent
                    continue
                self.dropped += 1
                sent += 1

    def close(self) -> None:
        """Close the socket; the next send opens a new one."""
        sock, self._sock, self._target, self.stream = self._sock, None, None, False
        if sock is not None:
            sock.close()
