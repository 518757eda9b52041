"""logfan's own logs: structlog, JSON off a terminal, readable on one, passwords never shown."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog

from logfan.daemon.broker.url import redact


def _redact_values(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    for key, value in event.items():
        if isinstance(value, str) and "://" in value:
            event[key] = redact(value)
    return event


def _redact_rendered(_logger: Any, _name: str, line: Any) -> Any:
    """The rendered line once more, so a URL in an exception's text or a nested value is hidden."""
    return redact(line)


class JournalHandler(logging.Handler):
    """Sends each log record to journald with its context as fields (``LOGFAN_SINK=...``)."""

    def __init__(self, send: Any) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        """MESSAGE is the readable line; every bound value is also a field of its own."""
        try:
            fields: dict[str, str] = {}
            if isinstance(record.msg, dict):
                for key, value in record.msg.items():
                    name = "LOGFAN_" + "".join(c if c.isalnum() else "_" for c in key).upper()
                    if not key.startswith("_") and value is not None:
                        fields[name[:64]] = str(value)
            priority = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}
            self._send(
                MESSAGE=self.format(record),
                PRIORITY=str(priority.get(record.levelno, 2)),
                SYSLOG_IDENTIFIER="logfan",
                **fields,
            )
        except Exception:  # noqa: BLE001 - logging must never take the daemon down
            self.handleError(record)


def _journal_send() -> Any:
    """systemd-python's journal.send when running under systemd with journald, else None."""
    if not os.environ.get("JOURNAL_STREAM"):
        return None
    try:
        from systemd import journal  # noqa: PLC0415 - an optional extra
    except ImportError:
        return None
    return journal.send


def configure(*, json_output: bool | None = None, level: str = "info") -> None:
    """Route structlog and the stdlib loggers (kombu, amqp) to one renderer and destination.

    Under systemd (``$JOURNAL_STREAM`` set, systemd-python installed): journald, with fields.
    On a terminal: readable colored lines. Otherwise: one JSON object per line on stderr.
    """
    journal_send = _journal_send() if json_output is None else None
    if json_output is None:
        json_output = not sys.stderr.isatty() and journal_send is None
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_values,
    ]
    renderer: Any
    if json_output:
        transformer = structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
        shared.append(structlog.processors.ExceptionRenderer(transformer))
        renderer = structlog.processors.JSONRenderer()
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    if journal_send is not None:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    handler: logging.Handler = (
        JournalHandler(journal_send) if journal_send else logging.StreamHandler(sys.stderr)
    )
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
                _redact_rendered,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # kombu and amqp are chatty at INFO about every connect; their warnings still show.
    for name in ("kombu", "amqp"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
