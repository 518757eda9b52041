"""`logfan check --probe`: ask the broker and open the sinks themselves, not just the config."""

from __future__ import annotations

from logfan.daemon.broker import connection, topology
from logfan.daemon.broker.failure import explain
from logfan.daemon.broker.url import error_text, redact
from logfan.daemon.config.loader import Config
from logfan.daemon.config.sink import build_sink


def probe(config: Config) -> list[tuple[str, str | None]]:
    """Try the broker and open (then close) every sink; ``(what, problem or None)`` each."""
    results: list[tuple[str, str | None]] = []
    url = redact(config.broker.url)
    try:
        with connection.connected(config.broker) as conn:
            topology.declare(conn, config.broker, [])
        results.append((f"broker {url}", None))
    except Exception as exc:  # noqa: BLE001 - any failure is the answer to the probe
        results.append((f"broker {url}", explain(exc, config.broker).reason))
    for sink_config in config.sinks:
        what = f"sink {sink_config.name} ({sink_config.type})"
        try:
            sink = build_sink(sink_config)
            sink.open()
            sink.close()
            results.append((what, None))
        except Exception as exc:  # noqa: BLE001 - any failure is the answer to the probe
            results.append((what, error_text(exc)))
    return results
