"""Broker URLs: which broker, where, and how to print one without its password."""

from __future__ import annotations

import dataclasses
import os
import re
from urllib.parse import urlsplit

SCHEMES = ("amqp", "amqps", "filesystem")
# The password runs to the last '@' before the host (as kombu reads it), so it may hold '@'.
_PASSWORD = re.compile(r"(?P<pre>://[^:/@;]*:)(?P<pw>[^;/]*)(?P<post>@)")


class BrokerURLError(ValueError):
    """The URL names no broker logfan can use."""


@dataclasses.dataclass(frozen=True)
class BrokerURL:
    """A parsed broker URL: ``amqp[s]://`` (one or more nodes, ``;``-separated) or embedded."""

    url: str
    embedded: bool
    spool: str | None = None


def redact(url: str) -> str:
    """``url`` with every password replaced by ``***``."""
    return _PASSWORD.sub(r"\g<pre>***\g<post>", url)


def error_text(exc: BaseException) -> str:
    """An error as a person reads it: its message with passwords hidden, else its type."""
    return redact(str(exc)) or type(exc).__name__


def has_password(url: str) -> bool:
    """Whether any node URL of ``url`` carries a password (``amqp://user:PASSWORD@host``)."""
    return redact(url) != url


def parse_broker_url(url: str) -> BrokerURL:
    """Check ``url`` and return what it names; ``BrokerURLError`` says what would be valid."""
    valid = "amqp://USER:PASS@HOST:PORT/VHOST, amqps://..., or filesystem:///DIR"
    scheme, sep, rest = url.strip().partition("://")
    if not sep or scheme not in SCHEMES:
        raise BrokerURLError(f"unsupported broker URL {redact(url)!r}; expected {valid}")
    if scheme == "filesystem":
        if not rest or ";" in rest:
            raise BrokerURLError(f"expected filesystem:///DIR (a folder), got {url!r}")
        # filesystem:///var/spool is absolute; filesystem://var/spool is relative to the cwd.
        return BrokerURL(url=url, embedded=True, spool=os.path.abspath(rest))
    for node in url.split(";"):
        parts = urlsplit(node.strip())
        if parts.scheme not in ("amqp", "amqps"):
            raise BrokerURLError(f"every node of a URL list must be amqp:// or amqps://: {valid}")
        try:
            port = parts.port
        except ValueError:
            raise BrokerURLError(f"bad port in broker URL {redact(node)!r}") from None
        if not parts.hostname:
            raise BrokerURLError(f"no host in broker URL {redact(node)!r}; expected {valid}")
        del port
    return BrokerURL(url=url, embedded=False)


def node_urls(url: str) -> list[str]:
    """The node URLs of a ``;``-separated failover list, in order."""
    return [node.strip() for node in url.split(";")]
