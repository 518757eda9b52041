"""The daemon's figures: one STATUS= line for systemd, a JSON file, and the status table."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any

from logfan.daemon.run.worker import SinkWorker

#: a status file older than this means the daemon is not running (it rewrites it every 2 s).
STALE_AFTER = 10.0


def sink_figures(consumer: SinkWorker) -> dict[str, Any]:
    """What one sink's worker reports."""
    stats = consumer.stats
    return {
        "type": consumer.sink_config.type,
        "state": stats.state,
        "delivered": stats.delivered,
        "backlog": stats.backlog,
        "held": stats.held,
        "redelivered_messages": stats.redelivered,
        "dead_lettered": stats.dead_lettered,
        "dropped": stats.dropped,
        "truncated": stats.truncated + stats.sink_truncated,
        "retries": stats.retries,
        "connects": stats.connects,
        "node": stats.node,
        "last_error": stats.last_error,
    }


def status_line(consumers: Mapping[str, SinkWorker]) -> str:
    """One line for systemd's STATUS=: each sink's state, delivered lines and backlog."""
    parts = []
    for name, consumer in consumers.items():
        stats = consumer.stats
        backlog = "?" if stats.backlog is None else str(stats.backlog)
        part = f"{name} {stats.state} {stats.delivered} delivered {backlog} queued"
        if stats.state in ("disconnected", "retrying") and stats.last_error:
            part += f" ({stats.last_error[:80]})"
        parts.append(part)
    return "; ".join(parts)


def write_status_file(path: str, consumers: Mapping[str, SinkWorker]) -> None:
    """Replace ``path`` with the current figures (write then rename: readers see whole files)."""
    doc = {
        "pid": os.getpid(),
        "written_at": time.time(),
        "sinks": {name: sink_figures(c) for name, c in consumers.items()},
    }
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f)
    os.replace(tmp, path)


def remove_status_file(path: str) -> None:
    """At a clean stop: the figures are no longer live."""
    with contextlib.suppress(OSError):
        os.remove(path)


def read_status_file(path: str) -> dict[str, Any] | None:
    """The daemon's figures, or None if there are none or they are stale."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or time.time() - float(doc.get("written_at", 0)) > STALE_AFTER:
        return None
    return doc


def render_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain text table with columns as wide as their longest cell."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]
    return "\n".join(lines)
