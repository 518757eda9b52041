"""Connecting to the broker: a kombu connection per node URL, failover, a printable name."""

from __future__ import annotations

import select
import socket
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from kombu import Connection

from logfan.daemon.broker.failure import ConnectFailed
from logfan.daemon.broker.url import node_urls, parse_broker_url, redact
from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.errors import BrokerError


def connect(
    broker: BrokerConfig,
    *,
    heartbeat: int | None = None,
    transport_options: dict[str, Any] | None = None,
    node: str | None = None,
) -> Connection:
    """A new (not yet connected) kombu connection; never shared between threads.

    ``node`` picks one URL of a failover list (default: the first). Each node gets its own
    TLS options, so its certificate is checked against its own host name.
    """
    parsed = parse_broker_url(broker.url)
    options = dict(transport_options or {})
    if parsed.embedded:
        from logfan.daemon.broker.spool.access import unusable  # noqa: PLC0415 - amqp users never load it
        from logfan.daemon.broker.spool.transport import Transport  # noqa: PLC0415

        if (folder := unusable(Path(str(parsed.spool)))) is not None:
            raise BrokerError(
                f"cannot use the embedded broker's spool {parsed.spool}: no write access to "
                f"{folder}; run this as the user that owns it (e.g. sudo -u logfan logfan ...)"
            )
        options.update(root=parsed.spool, polling_interval=0.01)
        return Connection(transport=Transport, transport_options=options)
    url = (node or parsed.url.split(";")[0]).strip()
    tls = url.startswith("amqps://")
    return Connection(
        url.replace("amqps://", "amqp://", 1) if tls else url,
        heartbeat=broker.heartbeat if heartbeat is None else heartbeat,
        connect_timeout=broker.connect_timeout,
        transport_options=options,
        password=broker.credentials.password(),
        ssl=broker.credentials.ssl_options(urlsplit(url).hostname or "") if tls else False,
    )


def nodes(broker: BrokerConfig) -> list[str]:
    """The broker's node URLs (a ``;``-separated failover list), in order."""
    return node_urls(broker.url)


#: per failover list, the node to try first: the one that last worked (module-wide, all threads).
_preferred: dict[str, int] = {}


def connected(broker: BrokerConfig, **kwargs: Any) -> Connection:
    """``connect`` and establish the connection, trying each node of a failover list once.

    logfan walks the list itself instead of leaving it to kombu, whose failover shares one TLS
    option dict between nodes (the next node's certificate would be checked against the first
    node's name). The node that worked is tried first next time. When none works, ConnectFailed
    holds each node's error (``failure.explain`` says what they mean).
    """
    urls = nodes(broker)
    first = _preferred.get(broker.url, 0)
    failures: list[tuple[str, BaseException]] = []
    for i in range(len(urls)):
        index = (first + i) % len(urls)
        conn = connect(broker, node=urls[index], **kwargs)
        try:
            conn.ensure_connection(max_retries=0, timeout=broker.connect_timeout)
        except Exception as exc:  # noqa: BLE001 - try the next node; all errors are raised
            conn.release()
            failures.append((urls[index], exc))
            continue
        _preferred[broker.url] = index
        return conn
    _preferred[broker.url] = (first + 1) % len(urls)
    raise ConnectFailed(failures) from failures[-1][1]


def describe(connection: Connection) -> str:
    """Where ``connection`` goes, password hidden: an AMQP URL, or the embedded broker's spool."""
    if is_embedded(connection):
        root = (connection.transport_options or {}).get("root", "")
        return f"filesystem://{root}"
    return redact(connection.as_uri())


def is_embedded(connection: Connection) -> bool:
    """True for the embedded filesystem broker (acks one by one, no heartbeats)."""
    return bool(connection.transport.driver_type == "filesystem")


def readable(connection: Connection, timeout: float) -> bool | None:
    """Whether an AMQP connection has something to read within ``timeout`` seconds, waited with
    microsecond precision (a socket timeout waits at least a millisecond: poll() counts in
    milliseconds); None where that cannot be told (the embedded broker has no socket)."""
    sock = getattr(getattr(connection.connection, "transport", None), "sock", None)
    if not isinstance(sock, socket.socket):
        return None
    if isinstance(sock, ssl.SSLSocket) and sock.pending():
        return True  # already decrypted, waiting in the TLS layer
    try:
        return bool(select.select([sock], [], [], timeout)[0])
    except (OSError, ValueError):  # closed under us: let the read say so
        return True
