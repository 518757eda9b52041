"""The config file: found, parsed, validated into typed objects, every error with file:line: key."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from typing import Any

from logfan.daemon.brokerurl import BrokerURLError, parse_broker_url, redact
from logfan.daemon.registry import load_sink_class
from logfan.daemon.secrets import TLS_KEYS, BrokerSecrets
from logfan.daemon.yamlsource import Document, load_yaml
from logfan.sinks.base import Options, Sink, SinkConfigError

DEFAULT_PATH = "/etc/logfan/logfan.yaml"
DEFAULT_URL = "filesystem:///var/lib/logfan/spool"
SINK_NAME = re.compile(r"\A[A-Za-z0-9_-]{1,100}\Z")
EXCHANGE_NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,200}\Z")
TOP_KEYS = ("broker", "sinks", "daemon")
DEFAULT_STATUS_FILE = "/run/logfan/status.json"
BROKER_KEYS = (
    "url",
    "exchange",
    "exchange_durable",
    "heartbeat",
    "prefetch",
    "connect_timeout",
    "password_file",
    "password_env",
    "tls",
)


@dataclasses.dataclass(frozen=True)
class BrokerConfig:
    """Where the exchange lives and how consumers talk to it."""

    url: str = DEFAULT_URL
    exchange: str = "logs"
    exchange_durable: bool = False
    heartbeat: int = 30
    prefetch: int = 100
    connect_timeout: float = 5.0
    secrets: BrokerSecrets = dataclasses.field(default_factory=BrokerSecrets)


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
    max_line_bytes: int = 64 * 1024

    @property
    def queue(self) -> str:
        """The sink's durable queue."""
        return f"logfan.{self.name}"

    @property
    def dead_queue(self) -> str:
        """The sink's dead-letter queue."""
        return f"logfan.{self.name}.dead"


@dataclasses.dataclass(frozen=True)
class DaemonConfig:
    """The daemon's own settings."""

    #: where `logfan run` keeps its figures for `logfan status` (rewritten every 2 s).
    status_file: str = DEFAULT_STATUS_FILE


@dataclasses.dataclass(frozen=True)
class Config:
    """A whole, valid config."""

    path: str
    broker: BrokerConfig
    sinks: tuple[SinkConfig, ...]
    daemon: DaemonConfig = DaemonConfig()


def config_path(cli_path: str | None) -> str:
    """``-c FILE``, else ``$LOGFAN_CONFIG``, else the system default."""
    return cli_path or os.environ.get("LOGFAN_CONFIG") or DEFAULT_PATH


def _unknown_keys(
    doc: Document, key: tuple[str, ...], values: Mapping[str, Any], valid: tuple[str, ...]
) -> None:
    for k in values:
        if k not in valid:
            raise doc.error((*key, k), f"unknown key; valid keys are: {', '.join(valid)}")


def _number(doc: Document, raw: Mapping[str, Any], key: str, default: float, minimum: float) -> Any:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise doc.error(
            ("broker", key), f"expected a number of at least {minimum:g}, got {value!r}"
        )
    return value


def _broker(doc: Document, raw: Any) -> BrokerConfig:
    if raw is None:
        return BrokerConfig()
    if not isinstance(raw, dict):
        raise doc.error(("broker",), f"expected a mapping with keys {', '.join(BROKER_KEYS)}")
    _unknown_keys(doc, ("broker",), raw, BROKER_KEYS)
    url = raw.get("url", DEFAULT_URL)
    if not isinstance(url, str):
        raise doc.error(("broker", "url"), f"expected a URL string, got {url!r}")
    try:
        parse_broker_url(url)
    except BrokerURLError as exc:
        raise doc.error(("broker", "url"), str(exc)) from None
    exchange = raw.get("exchange", "logs")
    if not isinstance(exchange, str) or not EXCHANGE_NAME.match(exchange):
        raise doc.error(
            ("broker", "exchange"),
            f"expected a name of letters, digits, '.', '_' or '-', got {exchange!r}",
        )
    durable = raw.get("exchange_durable", False)
    if not isinstance(durable, bool):
        raise doc.error(("broker", "exchange_durable"), f"expected true or false, got {durable!r}")
    heartbeat = int(_number(doc, raw, "heartbeat", 30, 0))
    if 0 < heartbeat < 10:
        raise doc.error(
            ("broker", "heartbeat"),
            f"expected 0 (off) or at least 10 seconds, got {heartbeat}: shorter ones drop "
            "healthy connections",
        )
    return BrokerConfig(
        url=url,
        exchange=exchange,
        exchange_durable=durable,
        heartbeat=heartbeat,
        prefetch=int(_number(doc, raw, "prefetch", 100, 1)),
        connect_timeout=float(_number(doc, raw, "connect_timeout", 5.0, 0.1)),
        secrets=_secrets(doc, raw),
    )


def _optional_str(doc: Document, key: tuple[str, ...], value: Any) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise doc.error(key, f"expected a non-empty string, got {value!r}")


def _secrets(doc: Document, raw: dict[str, Any]) -> BrokerSecrets:
    password_file = _optional_str(doc, ("broker", "password_file"), raw.get("password_file"))
    password_env = _optional_str(doc, ("broker", "password_env"), raw.get("password_env"))
    if password_file and password_env:
        raise doc.error(("broker", "password_env"), "give password_file or password_env, not both")
    if (password_file or password_env) and redact(str(raw.get("url", ""))) != raw.get("url"):
        raise doc.error(
            ("broker", "url"), "the URL holds a password too: give it in one place only"
        )
    tls = raw.get("tls") or {}
    if not isinstance(tls, dict):
        raise doc.error(("broker", "tls"), f"expected a mapping with keys {', '.join(TLS_KEYS)}")
    _unknown_keys(doc, ("broker", "tls"), tls, TLS_KEYS)
    verify = tls.get("verify", True)
    if not isinstance(verify, bool):
        raise doc.error(("broker", "tls", "verify"), f"expected true or false, got {verify!r}")
    files = {k: _optional_str(doc, ("broker", "tls", k), tls.get(k)) for k in TLS_KEYS[:4]}
    for k in ("ca_file", "cert_file", "key_file"):
        if files[k] and not os.path.isfile(str(files[k])):
            raise doc.error(("broker", "tls", k), f"no such file: {files[k]}")
    if bool(files["cert_file"]) != bool(files["key_file"]):
        raise doc.error(("broker", "tls"), "a client certificate needs both cert_file and key_file")
    return BrokerSecrets(
        password_file=password_file,
        password_env=password_env,
        ca_file=files["ca_file"],
        cert_file=files["cert_file"],
        key_file=files["key_file"],
        server_name=files["server_name"],
        verify=verify,
    )


_SIZE = re.compile(r"\A\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)\s*\Z")
_UNITS = {"B": 1, "KB": 10**3, "KiB": 2**10, "MB": 10**6, "MiB": 2**20, "GB": 10**9, "GiB": 2**30}


def _max_queue(doc: Document, key: tuple[str, ...], value: Any) -> tuple[int | None, int | None]:
    """``max_queue: 100000`` (messages) or ``max_queue: 512MiB`` (bytes); None: unbounded."""
    if value is None:
        return None, None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return int(value), None
    match = _SIZE.match(value) if isinstance(value, str) else None
    if match and int(match.group(1)) >= 1:
        return None, int(match.group(1)) * _UNITS[match.group(2)]
    raise doc.error(
        (*key, "max_queue"),
        f"expected a number of messages (100000) or a size (512MiB, 1GB), got {value!r}",
    )


def _sink(doc: Document, name: str, raw: Any) -> SinkConfig:
    key = ("sinks", name)
    if not SINK_NAME.match(name):
        raise doc.error(key, "a sink name is 1-100 letters, digits, '_' or '-' (it names a queue)")
    if not isinstance(raw, dict):
        raise doc.error(key, f"expected a mapping with at least 'type', got {raw!r}")
    type_name = raw.get("type")
    if not isinstance(type_name, str):
        raise doc.error((*key, "type"), "every sink needs a 'type' (a sink type name)")
    retries = raw.get("max_retries", 5)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
        raise doc.error((*key, "max_retries"), f"expected a whole number >= 1, got {retries!r}")
    max_queue, max_queue_bytes = _max_queue(doc, key, raw.get("max_queue"))
    max_line = raw.get("max_line_bytes", 64 * 1024)
    if isinstance(max_line, bool) or not isinstance(max_line, int) or max_line < 64:
        raise doc.error((*key, "max_line_bytes"), f"expected a number >= 64, got {max_line!r}")
    sink_config = SinkConfig(
        name,
        type_name,
        raw,
        doc.line(key),
        max_retries=int(retries),
        max_queue=max_queue,
        max_queue_bytes=max_queue_bytes,
        max_line_bytes=int(max_line),
    )
    try:
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


def load_config(path: str) -> Config:
    """Read and validate ``path``, building each sink once so its options are checked too."""
    doc = load_yaml(path)
    root = doc.value
    if not isinstance(root, dict):
        raise doc.error((), "expected a mapping with the keys 'broker' and 'sinks'")
    _unknown_keys(doc, (), root, TOP_KEYS)
    broker = _broker(doc, root.get("broker"))
    sinks_raw = root.get("sinks")
    if not isinstance(sinks_raw, dict) or not sinks_raw:
        raise doc.error(("sinks",), "expected a mapping of at least one named sink")
    sinks = tuple(_sink(doc, str(name), raw) for name, raw in sinks_raw.items())
    return Config(path=path, broker=broker, sinks=sinks, daemon=_daemon(doc, root.get("daemon")))


def _daemon(doc: Document, raw: Any) -> DaemonConfig:
    if raw is None:
        return DaemonConfig()
    if not isinstance(raw, dict):
        raise doc.error(("daemon",), "expected a mapping with the key 'status_file'")
    _unknown_keys(doc, ("daemon",), raw, ("status_file",))
    status_file = raw.get("status_file", DEFAULT_STATUS_FILE)
    if not isinstance(status_file, str) or not status_file:
        raise doc.error(("daemon", "status_file"), f"expected a file path, got {status_file!r}")
    return DaemonConfig(status_file=os.path.abspath(status_file))
