"""logfan's own logs: structlog, JSON off a terminal, readable on one, passwords never shown."""

from __future__ import annotations

import json
import logging
import os
import sys
import traceback
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


#: event keys the journal has fields of its own for (or that only the console needs).
_JOURNAL_OWN = frozenset({"timestamp", "level", "logger", "pathname", "lineno", "func_name"})
_PRIORITY = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3}


def _text(value: Any) -> str:
    """A value as a journal field holds it: strings as they are, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)


class JournalHandler(logging.Handler):
    """Sends each log record to journald: the event in words, each value a field of its own.

    MESSAGE is the event and its values (``consumer disconnected sink=remote error=...``), with
    the traceback when there is one; each value is also a ``LOGFAN_<KEY>`` field (JSON when it
    is not a string); CODE_FILE, CODE_LINE and CODE_FUNC name the code that logged.
    """

    def __init__(self, send: Any) -> None:
        super().__init__()
        self._send = send

    def emit(self, record: logging.LogRecord) -> None:
        """One journal entry for ``record``."""
        try:
            event = record.msg if isinstance(record.msg, dict) else {"event": record.getMessage()}
            words, fields = [str(event.get("event", ""))], {}
            for key, value in event.items():
                if key.startswith("_") or value is None or key in _JOURNAL_OWN:
                    continue
                name = "LOGFAN_" + "".join(c if c.isalnum() else "_" for c in key).upper()
                fields[name[:64]] = redact(_text(value))
                if key != "event":
                    words.append(f"{key}={fields[name[:64]]}")
            message = " ".join(words)
            if record.exc_info:
                message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self._send(
                MESSAGE=redact(message),
                PRIORITY=str(_PRIORITY.get(record.levelno, 2)),
                SYSLOG_IDENTIFIER="logfan",
                CODE_FILE=str(event.get("pathname") or record.pathname),
                CODE_LINE=int(event.get("lineno") or record.lineno),  # systemd-python wants an int
                CODE_FUNC=str(event.get("func_name") or record.funcName),
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
    if journal_send is not None:  # the journal names the code that logged (CODE_FILE, ...)
        callsite = structlog.processors.CallsiteParameter
        shared.append(
            structlog.processors.CallsiteParameterAdder(
                {callsite.PATHNAME, callsite.LINENO, callsite.FUNC_NAME}
            )
        )
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
    # kombu and amqp are chatty at INFO about every connect; their warnings still show. The config
    # watcher (watchdog) logs each event in the config's folder at DEBUG, the status file's too.
    for name in ("kombu", "amqp", "watchdog"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
