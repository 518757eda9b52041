"""The config file: found, parsed, validated into typed objects, every error with file:line: key."""

from __future__ import annotations

import dataclasses
import os
import re
import socket

from logfan.daemon.broker.credentials import BrokerCredentials
from logfan.daemon.broker.url import BrokerURLError, has_password, parse_broker_url
from logfan.daemon.config.sink import QUEUE_TYPES, SinkConfig, parse_sink
from logfan.daemon.config.yamlsource import load_yaml
from logfan.sinks.options import OptionError, OptionReader

__all__ = ["BrokerConfig", "Config", "DaemonConfig", "config_path", "load_config"]

DEFAULT_PATH = "/etc/logfan/logfan.yaml"
DEFAULT_URL = "filesystem:///var/lib/logfan/spool"
EXCHANGE_NAME = re.compile(r"\A[A-Za-z0-9_.-]{1,200}\Z")
HOST_NAME = re.compile(r"\A[A-Za-z0-9_-]{1,64}\Z")
#: the default of ``daemon.metrics``: Prometheus metrics on loopback only.
METRICS_ADDRESS = "127.0.0.1:9464"


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
    credentials: BrokerCredentials = dataclasses.field(default_factory=BrokerCredentials)
    #: where ``url`` came from, as a message about it names it: ``broker.url`` or ``--url``.
    url_source: str = "broker.url"


@dataclasses.dataclass(frozen=True)
class DaemonConfig:
    """The daemon's own settings."""

    #: where `logfan run` keeps its figures for `logfan status` (rewritten every 2 s).
    status_file: str = "/run/logfan/status.json"
    #: this daemon's name in ``per-host`` queue names (default: the short host name).
    host: str = dataclasses.field(default_factory=lambda: socket.gethostname().split(".")[0])
    #: where to serve Prometheus metrics (``HOST:PORT``); None: not at all.
    metrics: str | None = METRICS_ADDRESS

    @property
    def metrics_address(self) -> tuple[str, int] | None:
        """``metrics`` as (host, port)."""
        return None if self.metrics is None else parse_address(self.metrics)


def parse_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6; port 0 picks a free one); ValueError if bad."""
    host, sep, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected HOST:PORT such as {METRICS_ADDRESS} or false, got {text!r}")
    return host, int(port)


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


def load_config(path: str) -> Config:
    """Read and validate ``path``, building each sink once so its options are checked too."""
    doc = load_yaml(path)
    if not isinstance(doc.value, dict):
        raise doc.error((), "expected a mapping with the keys 'broker' and 'sinks'")
    root = OptionReader(doc.value)
    try:
        broker = _broker(root.section("broker", example="{url: amqp://HOST//}"))
        daemon = _daemon(root.section("daemon", example="{host: web1}"))
        sinks_raw = root.get_raw("sinks")
        root.finish()
    except OptionError as exc:
        raise doc.error(tuple(exc.key.split(".")) if exc.key else (), exc.reason) from None
    if not isinstance(sinks_raw, dict) or not sinks_raw:
        raise doc.error(("sinks",), "expected a mapping of at least one named sink")
    sinks = tuple(
        parse_sink(doc, str(name), raw, queue_type=broker.queue_type, host=daemon.host)
        for name, raw in sinks_raw.items()
    )
    return Config(path=path, broker=broker, sinks=sinks, daemon=daemon)


def _broker(section: OptionReader | None) -> BrokerConfig:
    default = BrokerConfig()
    if section is None:
        return default
    url = section.get_raw("url", default.url)
    if isinstance(url, list) and url and all(isinstance(u, str) and u for u in url):
        url = ";".join(url)  # several nodes of a cluster: logfan fails over between them
    if not isinstance(url, str):
        raise section.error("url", f"expected a URL or a list of node URLs, got {url!r}")
    try:
        parse_broker_url(url)
    except BrokerURLError as exc:
        raise section.error("url", str(exc)) from None
    exchange = section.get_str("exchange", default.exchange)
    if not EXCHANGE_NAME.match(exchange):
        raise section.error(
            "exchange", f"expected a name of letters, digits, '.', '_' or '-', got {exchange!r}"
        )
    heartbeat = section.get_int("heartbeat", default.heartbeat, minimum=0)
    if 0 < heartbeat < 10:
        raise section.error(
            "heartbeat",
            f"expected 0 (off) or at least 10 seconds, got {heartbeat}: shorter ones drop "
            "healthy connections",
        )
    config = BrokerConfig(
        url=url,
        exchange=exchange,
        exchange_durable=section.get_bool("exchange_durable", default.exchange_durable),
        heartbeat=heartbeat,
        prefetch=section.get_int("prefetch", default.prefetch, minimum=1),
        connect_timeout=section.get_float("connect_timeout", default.connect_timeout, minimum=0.1),
        queue_type=section.get_choice("queue_type", QUEUE_TYPES, default.queue_type),
        credentials=_credentials(section, url),
    )
    section.finish()
    return config


def _credentials(section: OptionReader, url: str) -> BrokerCredentials:
    password_file = section.get_str("password_file", None)
    password_env = section.get_str("password_env", None)
    if password_file and password_env:
        raise section.error("password_env", "give password_file or password_env, not both")
    if (password_file or password_env) and has_password(url):
        raise section.error("url", "the URL holds a password too: give it in one place only")
    tls = section.section("tls", example="{ca_file: /etc/logfan/ca.pem}")
    if tls is None:
        return BrokerCredentials(password_file=password_file, password_env=password_env)
    files = {k: tls.get_str(k, None) for k in ("ca_file", "cert_file", "key_file")}
    for key, file in files.items():
        if file and not os.path.isfile(file):
            raise tls.error(key, f"no such file: {file}")
    if bool(files["cert_file"]) != bool(files["key_file"]):
        raise tls.error(None, "a client certificate needs both cert_file and key_file")
    credentials = BrokerCredentials(
        password_file=password_file,
        password_env=password_env,
        server_name=tls.get_str("server_name", None),
        verify=tls.get_bool("verify", True),
        **files,
    )
    tls.finish()
    return credentials


def _daemon(section: OptionReader | None) -> DaemonConfig:
    if section is None:
        return DaemonConfig()
    status_file = section.get_str("status_file", DaemonConfig.status_file)
    host = section.get_raw("host")
    if host is not None and not (isinstance(host, str) and HOST_NAME.match(host)):
        raise section.error("host", f"expected letters, digits, '_' or '-', got {host!r}")
    metrics = section.get_raw("metrics", METRICS_ADDRESS)
    if metrics is False:
        metrics = None
    elif isinstance(metrics, str):
        try:
            parse_address(metrics)
        except ValueError as exc:
            raise section.error("metrics", str(exc)) from None
    else:
        raise section.error(
            "metrics", f"expected HOST:PORT such as {METRICS_ADDRESS} or false, got {metrics!r}"
        )
    config = DaemonConfig(status_file=os.path.abspath(status_file), metrics=metrics)
    if host is not None:
        config = dataclasses.replace(config, host=host)
    section.finish()
    return config
