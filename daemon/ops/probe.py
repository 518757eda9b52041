"""`check --probe` and `status`: ask the broker and the sinks themselves, not just the config."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from logfan.daemon.broker import connection, topology
from logfan.daemon.broker.url import redact
from logfan.daemon.config.loader import Config
from logfan.daemon.config.sink import build_sink
from logfan.daemon.ops.status import read_status_file


def _reason(exc: BaseException) -> str:
    return redact(str(exc)) or type(exc).__name__


def probe(config: Config) -> list[tuple[str, str | None]]:
    """Try the broker and open (then close) every sink; ``(what, problem or None)`` each."""
    results: list[tuple[str, str | None]] = []
    url = redact(config.broker.url)
    try:
        with connection.connected(config.broker) as conn:
            topology.declare(conn, config.broker, [])
        results.append((f"broker {url}", None))
    except Exception as exc:  # noqa: BLE001 - any failure is the answer to the probe
        results.append((f"broker {url}", _reason(exc)))
    for sink_config in config.sinks:
        what = f"sink {sink_config.name} ({sink_config.type})"
        try:
            sink = build_sink(sink_config)
            sink.open()
            sink.close()
            results.append((what, None))
        except Exception as exc:  # noqa: BLE001 - any failure is the answer to the probe
            results.append((what, _reason(exc)))
    return results


def _host_port(url: Any) -> str:
    """``host:port`` of a node URL, for the status table."""
    if not isinstance(url, str) or "://" not in url:
        return "-"
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "-")


def _depths(channel: Any, queue: str) -> tuple[int, int]:
    ok = channel.queue_declare(queue=queue, passive=True)
    return int(ok.message_count), int(ok.consumer_count)


def status_rows(config: Config) -> tuple[list[str], list[list[str]], list[str]]:
    """Headers, one row per sink, and notes, from the broker's figures and the daemon's."""
    daemon = read_status_file(config.daemon.status_file)
    figures: dict[str, Any] = daemon["sinks"] if daemon else {}
    notes = [] if daemon else [f"daemon: not running (no fresh {config.daemon.status_file})"]
    depths: dict[str, tuple[str, str, str]] = {}
    try:
        with connection.connected(config.broker) as conn:
            embedded = connection.is_embedded(conn)
            for sink in config.sinks:
                try:
                    queued, consumers = _depths(conn.channel(), sink.queue)
                    dead_count, _ = _depths(conn.channel(), sink.dead_queue)
                    shown = "-" if embedded else str(consumers)
                    depths[sink.name] = (str(queued), shown, str(dead_count))
                except conn.channel_errors:
                    depths[sink.name] = ("no queue", "-", "-")
    except Exception as exc:  # noqa: BLE001 - status still shows what the daemon knows
        notes.append(f"broker: unreachable at {redact(config.broker.url)}: {_reason(exc)}")
    headers = [
        "SINK",
        "TYPE",
        "STATE",
        "NODE",
        "QUEUED",
        "HELD",
        "CONSUMERS",
        "DELIVERED",
        "DEAD",
        "LAST ERROR",
    ]
    rows: list[list[str]] = []
    for sink in config.sinks:
        mine = figures.get(sink.name, {})
        queued_s, consumers_s, dead_s = depths.get(sink.name, ("?", "?", "?"))
        rows.append(
            [
                sink.name,
                sink.type,
                str(mine.get("state", "-")),
                _host_port(mine.get("node")),
                queued_s,
                str(mine.get("held", "-")),
                consumers_s,
                str(mine.get("delivered", "-")),
                dead_s,
                str(mine.get("last_error") or "-")[:80],
            ]
        )
    return headers, rows, notes
