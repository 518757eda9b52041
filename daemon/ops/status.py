"""The daemon's figures: one STATUS= line for systemd, a JSON file, and `logfan status`."""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from logfan.daemon.broker import connection
from logfan.daemon.broker.failure import explain
from logfan.daemon.broker.url import redact
from logfan.daemon.config.loader import Config
from logfan.daemon.consume.figures import SinkState
from logfan.daemon.run.worker import SinkWorker

#: a status file older than this means the daemon is not running (it rewrites it every 2 s).
STALE_AFTER = 10.0
#: the most bytes of a STATUS= line: systemd ignores a whole notification of 4096 bytes or more
#: (READY=1 with it), so this leaves room for the other fields and a reload's note.
STATUS_MAX_BYTES = 3000
#: however many sinks share the line, each reason keeps at least this much (then the line is cut).
MIN_ERROR_BYTES = 40
ELLIPSIS = "\u2026"


def state_of(worker: SinkWorker) -> SinkState:
    """The worker's own state, unless the supervisor sees it wedged."""
    return SinkState.WEDGED if worker.wedged_since is not None else worker.figures.state


def _clock(epoch: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(epoch))


def sink_figures(worker: SinkWorker) -> dict[str, Any]:
    """What one sink's worker reports (and, when it is wedged, since when)."""
    figures = worker.figures
    return {
        "type": worker.sink_config.type,
        "state": state_of(worker),
        "wedged_since": worker.wedged_since,
        "delivered": figures.delivered,
        "backlog": figures.backlog,
        "held": figures.held,
        "redelivered": figures.redelivered,
        "dead_lettered": figures.dead_lettered,
        "dropped": figures.dropped,
        "truncated": figures.truncated + figures.sink_truncated,
        "filtered": figures.filtered,
        "retries": figures.retries,
        "connects": figures.connects,
        "node": figures.node,
        "last_error": figures.last_error,
    }


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` UTF-8 bytes: whole if it fits, else cut at a word boundary
    and ended with an ellipsis. Only a single word longer than ``limit`` is cut within."""
    if _size(text) <= limit:
        return text
    room = max(0, limit - _size(ELLIPSIS))
    head = text.encode("utf-8")[:room].decode("utf-8", "ignore")
    if not text[len(head)].isspace():  # the cut falls inside a word: drop that word's start
        space = max(head.rfind(" "), head.rfind("\n"))
        head = head[:space] if space > 0 else head
    return head.rstrip(" ,;:(\n") + ELLIPSIS


def _fit(errors: list[str], room: int) -> list[str]:
    """The errors within ``room`` bytes in all: the short ones whole, the longer ones sharing
    what is left equally, each cut at a word boundary."""
    fitted = list(errors)
    for left, i in enumerate(sorted(range(len(errors)), key=lambda i: _size(errors[i]))):
        share = room // (len(errors) - left)
        fitted[i] = shorten(errors[i], max(share, MIN_ERROR_BYTES))
        room -= _size(fitted[i])
    return fitted


def status_line(workers: Mapping[str, SinkWorker], limit: int = STATUS_MAX_BYTES) -> str:
    """One line for systemd's STATUS=: each sink's state, delivered lines and backlog, and why
    a sink is disconnected or retrying.

    The reasons are shown whole unless the line would exceed ``limit`` bytes (systemd ignores a
    notification of 4 KiB or more); then the longest are cut at a word boundary, with an
    ellipsis. The status file and ``logfan status`` always carry them whole.
    """
    parts: list[tuple[str, str | None]] = []
    for name, worker in workers.items():
        figures, state = worker.figures, state_of(worker)
        # a connected sink reads its queue's depth before it says so; an unreachable one cannot
        queued = "queue not readable" if figures.backlog is None else f"{figures.backlog} queued"
        part = f"{name} {state} {figures.delivered} delivered {queued}"
        error = None
        if worker.wedged_since is not None:
            part += f" (no progress since {_clock(worker.wedged_since)})"
        elif state in (SinkState.DISCONNECTED, SinkState.RETRYING) and figures.last_error:
            error = figures.last_error
        parts.append((part, error))

    def joined(errors: list[str]) -> str:
        shown = iter(errors)
        return "; ".join(
            part if error is None else f"{part} ({next(shown)})" for part, error in parts
        )

    errors = [error for _part, error in parts if error is not None]
    line = joined(errors)
    if _size(line) > limit:
        room = limit - _size(joined([""] * len(errors)))
        line = joined(_fit(errors, room))
    # very many sinks: even their figures do not fit, and the line itself is cut
    return shorten(line, limit)


def write_status_file(
    path: str,
    workers: Mapping[str, SinkWorker],
    reload: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
) -> None:
    """Replace ``path`` with the current figures (write then rename: readers see whole files).

    ``reload`` is the outcome of the last reload (``seq``, ``ok``, ``error``, ``pending``,
    ``at``), which `logfan reload` waits for; ``metrics`` where they are served (``url``) or
    why not (``error``).
    """
    doc = {
        "pid": os.getpid(),
        "written_at": time.time(),
        "reload": dict(reload) if reload else None,
        "metrics": dict(metrics) if metrics else None,
        "sinks": {name: sink_figures(c) for name, c in workers.items()},
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
    if not isinstance(doc, dict):
        return None
    written_at = doc.get("written_at")
    if not isinstance(written_at, int | float) or time.time() - written_at > STALE_AFTER:
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


def _host_port(url: Any) -> str:
    """``host:port`` of a node URL, for the status table."""
    if not isinstance(url, str) or "://" not in url:
        return "-"
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "-")


def _depths(channel: Any, queue: str) -> tuple[int, int]:
    ok = channel.queue_declare(queue=queue, passive=True)
    return int(ok.message_count), int(ok.consumer_count)


#: per sink, as the broker counts them: lines queued, consumers, dead letters (as shown).
Depths = dict[str, tuple[str, str, str]]


def queue_depths(config: Config) -> Depths:
    """Ask the broker how deep each sink's queue and dead-letter queue are."""
    depths: Depths = {}
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
    return depths


HEADERS = (
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
)


def status_table(
    config: Config, daemon: Mapping[str, Any] | None, depths: Depths
) -> list[list[str]]:
    """One row per sink: the broker's ``depths`` next to the daemon's figures (None: stopped)."""
    figures: Mapping[str, Any] = daemon["sinks"] if daemon else {}
    rows: list[list[str]] = []
    for sink in config.sinks:
        mine = figures.get(sink.name, {})
        queued, consumers, dead = depths.get(sink.name, ("?", "?", "?"))
        rows.append(
            [
                sink.name,
                sink.type,
                str(mine.get("state", "-")),
                _host_port(mine.get("node")),
                queued,
                str(mine.get("held", "-")),
                consumers,
                str(mine.get("delivered", "-")),
                dead,
                _last_error(mine),
            ]
        )
    return rows


def _last_error(figures: Mapping[str, Any]) -> str:
    """The LAST ERROR cell: a wedged sink says since when it made no progress."""
    since = figures.get("wedged_since")
    if isinstance(since, int | float):
        return f"no progress since {_clock(since)}"
    return str(figures.get("last_error") or "-")


def status_report(config: Config) -> tuple[str, list[str]]:
    """``logfan status``: the table, and notes on what could not be asked (daemon, broker)."""
    daemon = read_status_file(config.daemon.status_file)
    notes = [] if daemon else [f"daemon: not running (no fresh {config.daemon.status_file})"]
    served = daemon.get("metrics") if daemon else None
    if isinstance(served, dict) and (served.get("url") or served.get("error")):
        notes.append(f"metrics: {served.get('url') or served.get('error')}")
    depths: Depths = {}
    try:
        depths = queue_depths(config)
    except Exception as exc:  # noqa: BLE001 - status still shows what the daemon knows
        failure = explain(exc, config.broker)
        url = redact(config.broker.url)
        where = url if failure.permanent else f"unreachable at {url}"
        notes.append(f"broker: {where}: {failure.reason}")
    return render_table(HEADERS, status_table(config, daemon, depths)), notes
