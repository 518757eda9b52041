"""The config file: found, parsed, validated into typed objects, every error with file:line: key."""

from __future__ import annotations

import dataclasses
import os
import re
import socket
from collections.abc import Mapping
from typing import Any

from logfan.daemon.broker.credentials import TLS_KEYS, BrokerSecrets
from logfan.daemon.broker.url import BrokerURLError, parse_broker_url, redact
from logfan.daemon.config.sink import QUEUE_TYPES, SinkConfig, build_sink, parse_sink
from logfan.daemon.config.yamlsource import Document, load_yaml

__all__ = ["BrokerConfig", "Config", "DaemonConfig", "SinkConfig", "build_sink", "load_config"]

DEFAULT_PATH = "/etc/logfan/logfan.yaml"
DEFAULT_URL = "filesystem:///var/lib/logfan/spool"
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
    "queue_type",
)
DAEMON_KEYS = ("status_file", "host")


@dataclasses.dataclass(frozen=True)
class BrokerConfig:
    """Where the exchange lives and how consumers talk to it."""

    url: str = DEFAULT_URL
    exchange: str = "logs"
    exchange_durable: bool = False
    heartbeat: int = 30
    prefetch: int = 100
    connect_timeout: float = 5.0
    #: the sinks' default queue type: ``quorum`` in a RabbitMQ cluster.
    queue_type: str = "classic"
    secrets: BrokerSecrets = dataclasses.field(default_factory=BrokerSecrets)


@dataclasses.dataclass(frozen=True)
class DaemonConfig:
    """The daemon's own settings."""

    #: where `logfan run` keeps its figures for `logfan status` (rewritten every 2 s).
    status_file: str = DEFAULT_STATUS_FILE
    #: this daemon's name in ``per-host`` queue names (default: the short host name).
    host: str = dataclasses.field(default_factory=lambda: socket.gethostname().split(".")[0])


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
    if isinstance(url, list) and url and all(isinstance(u, str) and u for u in url):
        url = ";".join(url)  # several nodes of a cluster: kombu fails over between them
    if not isinstance(url, str):
        raise doc.error(("broker", "url"), f"expected a URL or a list of node URLs, got {url!r}")
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
        queue_type=_queue_type(doc, raw.get("queue_type", "classic")),
        secrets=_secrets(doc, raw),
    )


def _queue_type(doc: Document, value: Any) -> str:
    if value not in QUEUE_TYPES:
        raise doc.error(
            ("broker", "queue_type"), f"expected one of {', '.join(QUEUE_TYPES)}; got {value!r}"
        )
    return str(value)


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
    daemon = _daemon(doc, root.get("daemon"))
    sinks = tuple(
        parse_sink(doc, str(name), raw, queue_type=broker.queue_type, host=daemon.host)
        for name, raw in sinks_raw.items()
    )
    return Config(path=path, broker=broker, sinks=sinks, daemon=daemon)


def _daemon(doc: Document, raw: Any) -> DaemonConfig:
    if raw is None:
        return DaemonConfig()
    if not isinstance(raw, dict):
        raise doc.error(("daemon",), f"expected a mapping with keys {', '.join(DAEMON_KEYS)}")
    _unknown_keys(doc, ("daemon",), raw, DAEMON_KEYS)
    status_file = raw.get("status_file", DEFAULT_STATUS_FILE)
    if not isinstance(status_file, str) or not status_file:
        raise doc.error(("daemon", "status_file"), f"expected a file path, got {status_file!r}")
    host = raw.get("host", DaemonConfig().host)
    if not isinstance(host, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", host):
        raise doc.error(("daemon", "host"), f"expected letters, digits, '_' or '-', got {host!r}")
    return DaemonConfig(status_file=os.path.abspath(status_file), host=host)
