"""One sink's settings: the options its class checks, and those the daemon reads itself."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from logfan.daemon.config.registry import load_sink_class
from logfan.daemon.config.yamlsource import Document
from logfan.daemon.consume.selection import Selection, parse_selection
from logfan.sinks.base import Options, Sink, SinkConfigError
from logfan.sinks.options import parse_size
from logfan.sinks.truncation import MAX_LINE_BYTES

SINK_NAME = re.compile(r"\A[A-Za-z0-9_-]{1,100}\Z")
QUEUE_TYPES = ("classic", "quorum")
SCOPES = ("shared", "per-host")
#: a quorum queue dead-letters a message redelivered this often (a line that kills consumers).
DELIVERY_LIMIT = 20
#: default ``flush_interval`` (seconds)
FLUSH_INTERVAL = 0.2


@dataclasses.dataclass(frozen=True)
class SinkConfig:
    """One named sink: its type, its raw options (checked by the sink class) and its line."""

    name: str
    type: str
    options: Mapping[str, Any]
    line: int | None = dataclasses.field(default=None, compare=False)
    #: tries of a batch failing with anything but RetryableSinkError before its lines are
    #: tried one by one and the failing ones dead-lettered.
    max_retries: int = 5
    #: bound of the queue, in messages (int) or bytes; the oldest overflow is dead-lettered.
    max_queue: int | None = None
    max_queue_bytes: int | None = None
    #: longest message handed to the sink, in UTF-8 bytes; longer ones are cut with a marker.
    max_line_bytes: int = MAX_LINE_BYTES
    #: seconds a received line may wait for its batch to fill before the batch is written anyway
    #: (a batch is also written as soon as nothing more arrives within 2 ms, or when it is full).
    flush_interval: float = FLUSH_INTERVAL
    #: ``classic`` or ``quorum`` (RabbitMQ); the broker section's default when not set.
    queue_type: str = "classic"
    #: ``shared``: one queue that every daemon consumes (competing); ``per-host``: a queue per
    #: daemon host, so each host's sink gets every line.
    scope: str = "shared"
    #: the daemon's host name, in the queue's name when ``scope`` is ``per-host``.
    host: str = "-"
    #: which lines the sink writes (``select:``); None: every line.
    select: Selection | None = None

    @property
    def queue(self) -> str:
        """The sink's durable queue."""
        if self.scope == "per-host":
            return f"logfan.{self.name}.{self.host}"
        return f"logfan.{self.name}"

    @property
    def dead_queue(self) -> str:
        """The sink's dead-letter queue."""
        return f"{self.queue}.dead"


#: a sink's settings when its entry gives only ``type``: the defaults, defined once above.
_DEFAULT = SinkConfig("", "", {})


def _max_queue(options: Options) -> tuple[int | None, int | None]:
    """``max_queue: 100000`` (messages) or ``max_queue: 512MiB`` (bytes); None: unbounded."""
    value = options.get_raw("max_queue")
    if value is None:
        return None, None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return int(value), None
    size = parse_size(value)
    if size is None or size < 1:
        raise options.error(
            "max_queue",
            f"expected a number of messages (100000) or a size (512MiB, 1GB), got {value!r}",
        )
    return None, size


def parse_sink(doc: Document, name: str, raw: Any, *, queue_type: str, host: str) -> SinkConfig:
    """Check one sink's entry, building the sink once so its own options are checked too."""
    key = ("sinks", name)
    if not SINK_NAME.match(name):
        raise doc.error(key, "a sink name is 1-100 letters, digits, '_' or '-' (it names a queue)")
    if not isinstance(raw, dict):
        raise doc.error(key, f"expected a mapping with at least 'type', got {raw!r}")
    type_name = raw.get("type")
    if not isinstance(type_name, str):
        raise doc.error((*key, "type"), "every sink needs a 'type' (a sink type name)")
    options = Options(name, raw)
    try:
        max_queue, max_queue_bytes = _max_queue(options)
        sink_config = SinkConfig(
            name,
            type_name,
            raw,
            doc.line(key),
            max_retries=options.get_int("max_retries", _DEFAULT.max_retries, minimum=1),
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            max_line_bytes=options.get_int("max_line_bytes", _DEFAULT.max_line_bytes, minimum=64),
            flush_interval=options.get_seconds("flush_interval", _DEFAULT.flush_interval),
            queue_type=options.get_choice("queue_type", QUEUE_TYPES, queue_type),
            scope=options.get_choice("scope", SCOPES, _DEFAULT.scope),
            host=host,
            select=parse_selection(
                options.section("select", example="{min_severity: err, match: 'timeout'}")
            ),
        )
        build_sink(sink_config)
    except LookupError as exc:
        raise doc.error((*key, "type"), str(exc)) from None
    except SinkConfigError as exc:
        raise doc.error((*key, *(exc.key.split(".") if exc.key else ())), exc.reason) from None
    return sink_config


def build_sink(sink_config: SinkConfig) -> Sink:
    """A new, unopened sink for ``sink_config``; raises LookupError or SinkConfigError."""
    cls = load_sink_class(sink_config.type)
    sink: Sink = cls(sink_config.name, Options(sink_config.name, sink_config.options))
    return sink
