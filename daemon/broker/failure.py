"""Why the broker failed us: permanent or transient, and one sentence naming the cause and fix.

A wrong login, a missing vhost, a missing permission or a TLS certificate that fails
verification does not heal by retrying: the emitter fails at once and the daemon says so once
per episode. A refused connection or a lost one may heal (the broker restarts), so it is
retried; its sentence still names the host and port. What py-amqp and kombu raise, reproduced
against RabbitMQ 3.10 (``tests/e2e/test_broker_errors.py``):

- wrong user or password: ``amqp.AccessRefused`` 403, ``ACCESS_REFUSED - Login was refused
  using authentication mechanism PLAIN...`` (no method: it closes the connection at once);
- a vhost that does not exist: ``amqp.NotAllowed`` 530 on ``Connection.open``, ``NOT_ALLOWED -
  vhost NAME not found``;
- a user with no permissions on the vhost: ``amqp.NotAllowed`` 530 on ``Connection.open``,
  ``NOT_ALLOWED - access to vhost 'V' refused for user 'U'``;
- a permission missing on the exchange or a queue: ``amqp.AccessRefused`` 403 on the channel
  operation (``Exchange.declare``, ``Queue.declare``, ``Queue.bind``, ``Basic.consume``,
  ``Basic.publish``...), ``ACCESS_REFUSED - access to queue 'Q' in vhost 'V' refused for user
  'U'``;
- a certificate that fails verification: ``kombu.exceptions.OperationalError`` caused by an
  ``ssl.SSLCertVerificationError`` (its ``verify_code`` says which check failed);
- nothing listening: ``OperationalError`` caused by ``ConnectionRefusedError``.

Users, vhosts and permissions are cluster-wide in RabbitMQ: such a refusal by one node of a
failover list is final for all. A certificate is a node's own: it is final only when every node
failed for good.
"""

from __future__ import annotations

import dataclasses
import errno
import ipaddress
import re
import shlex
import socket
import ssl
from collections.abc import Iterator, Sequence
from urllib.parse import unquote, urlsplit

from kombu.exceptions import KombuError

from logfan.daemon.broker.url import error_text, node_urls, redact
from logfan.daemon.config.loader import BrokerConfig

__all__ = ["BrokerFailure", "ConnectFailed", "explain"]

#: the user kombu logs in as when a URL names none.
DEFAULT_USER = "guest"
#: OpenSSL's verify codes (X509_V_ERR_*) that have a fix of their own.
_NAME_MISMATCH = frozenset({62, 63, 64})  # host name, e-mail, IP address
_EXPIRED, _NOT_YET_VALID = 10, 9
_UNTRUSTED = frozenset({2, 18, 19, 20, 21})  # no issuer, self-signed, chain incomplete

_RESOURCE = re.compile(
    r"access to (?P<kind>exchange|queue) '(?P<name>[^']*)' in vhost '(?P<vhost>[^']*)' "
    r"refused for user '(?P<user>[^']*)'"
)
#: anchored at the end: RabbitMQ appends ": connection limit (N) is reached" or ": vhost 'V' is
#: down" to the same words for refusals that may heal.
_VHOST_REFUSED = re.compile(
    r"access to vhost '(?P<vhost>[^']*)' refused for user '(?P<user>[^']*)'$"
)
_VHOST_MISSING = re.compile(r"vhost (?P<vhost>.*) not found$")
#: the permission (configure, write, read) each AMQP method needs on the resource refused.
_NEEDS = {
    ("Exchange.declare", "exchange"): "configure",
    ("Exchange.delete", "exchange"): "configure",
    ("Queue.declare", "queue"): "configure",
    ("Queue.delete", "queue"): "configure",
    ("Queue.bind", "queue"): "write",
    ("Queue.bind", "exchange"): "read",
    ("Queue.unbind", "queue"): "write",
    ("Queue.unbind", "exchange"): "read",
    ("Queue.purge", "queue"): "read",
    ("Basic.consume", "queue"): "read",
    ("Basic.get", "queue"): "read",
    ("Basic.publish", "exchange"): "write",
}


@dataclasses.dataclass(frozen=True)
class BrokerFailure:
    """What went wrong, for a person: ``reason`` names the cause and the fix in one sentence.

    ``permanent``: retrying cannot help until someone changes the config or the broker.
    ``kind``: ``login``, ``vhost``, ``permission``, ``tls``, ``refused``, ``unresolved`` or
    ``other``, and ``error_type`` the name of what was raised (a node's own error, not
    ConnectFailed), for logs.
    """

    permanent: bool
    reason: str
    kind: str
    error_type: str = ""


class ConnectFailed(ConnectionError):
    """No node of ``broker.url`` could be connected to; ``failures`` holds each node's error.

    Its text is the last node's error, as kombu would have raised it; ``explain`` reads them
    all.
    """

    def __init__(self, failures: Sequence[tuple[str, BaseException]]) -> None:
        self.failures = list(failures)
        super().__init__(error_text(self.failures[-1][1]) if self.failures else "no broker node")


def explain(exc: BaseException, broker: BrokerConfig) -> BrokerFailure:
    """Classify a failure to connect to (or use) the broker of ``broker``."""
    if isinstance(exc, ConnectFailed) and exc.failures:
        return _of_nodes([(_classify(e, node, broker), node) for node, e in exc.failures])
    nodes = node_urls(broker.url)
    return _classify(exc, nodes[0] if len(nodes) == 1 else None, broker)


def _of_nodes(found: list[tuple[BrokerFailure, str]]) -> BrokerFailure:
    """One verdict for every node of a failover list."""
    failures = [failure for failure, _node in found]
    for failure in failures:
        if failure.permanent and failure.kind in ("login", "vhost", "permission"):
            return failure  # users, vhosts, permissions: the same on every node of a cluster
    if all(f.permanent for f in failures):
        return failures[0]
    if len(failures) == 1:
        return failures[0]
    last = failures[-1]
    if all(f.kind == "refused" for f in failures):
        where = " or ".join(_host_port(node) for _failure, node in found)
        reason = f"nothing listens on {where}: are the brokers running, and the ports right?"
        return BrokerFailure(False, reason, "refused", last.error_type)
    # some node may come back: retried, and each node's reason said (named if it names none)
    reasons = [f.reason if f.kind != "other" else f"{_host_port(n)}: {f.reason}" for f, n in found]
    return BrokerFailure(False, "; ".join(dict.fromkeys(reasons)), last.kind, last.error_type)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it: kombu wraps socket and TLS errors in its OperationalError.

    The context of other errors (one raised while handling another) is not followed: a timeout
    that came while handling a refusal says nothing about the refusal.
    """
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.append(current.__cause__)
        if isinstance(current, KombuError):
            todo.append(current.__context__)


def _classify(exc: BaseException, node: str | None, broker: BrokerConfig) -> BrokerFailure:
    for error in _chain(exc):
        found = _one(error, node, broker)
        if found is not None:
            return dataclasses.replace(found, error_type=type(exc).__name__)
    return BrokerFailure(False, error_text(exc), "other", type(exc).__name__)


def _one(error: BaseException, node: str | None, broker: BrokerConfig) -> BrokerFailure | None:
    if isinstance(error, ssl.SSLCertVerificationError):
        return _tls(error, node, broker)
    code = getattr(error, "reply_code", None)
    text = str(getattr(error, "reply_text", "") or "")
    if code == 403:
        return _access_refused(error, text, node, broker)
    if code == 530:
        return _not_allowed(text, node, broker)
    if isinstance(error, ConnectionRefusedError) or (
        isinstance(error, OSError) and error.errno == errno.ECONNREFUSED
    ):
        where = _host_port(node) if node else "the broker's address"
        return BrokerFailure(
            False,
            f"nothing listens on {where}: is the broker running, and is the port right?",
            "refused",
        )
    if isinstance(error, socket.gaierror) and node:
        host = urlsplit(node).hostname or node
        return BrokerFailure(
            False,
            f"cannot resolve the broker's host name {host!r} ({error.strerror}): is the host in "
            f"{broker.url_source} right?",
            "unresolved",
        )
    return None


def _access_refused(
    error: BaseException, text: str, node: str | None, broker: BrokerConfig
) -> BrokerFailure:
    method = str(getattr(error, "method_name", "") or "")
    if "Login was refused" in text or not method:
        return _login(node, broker)
    match = _RESOURCE.search(text)
    if match is None:
        return BrokerFailure(
            True,
            f"the broker refused {method} ({redact(text)}): check the user's permissions "
            "(rabbitmqctl list_user_permissions USER)",
            "permission",
        )
    kind, name, vhost, user = match.group("kind", "name", "vhost", "user")
    needed = _NEEDS.get((method, kind), "needed")
    return BrokerFailure(
        True,
        f"user {user!r} lacks the {needed} permission on {kind} {name!r} in vhost {vhost!r} "
        f"({method} was refused): grant it with rabbitmqctl set_permissions (logfan needs "
        f"{_needs(broker)})",
        "permission",
    )


def _needs(broker: BrokerConfig) -> str:
    """The permissions logfan's user needs on its vhost (docs/operations.md says why)."""
    return (
        f"configure, write and read on exchange {broker.exchange!r} and on the queues logfan.*, "
        "and write on amq.default for dead letters"
    )


def _login(node: str | None, broker: BrokerConfig) -> BrokerFailure:
    # the user of the node that refused, else the first node's (every node's, as a rule)
    name = urlsplit(node or node_urls(broker.url)[0]).username
    user = unquote(name) if name else DEFAULT_USER
    where = f"the broker at {_host_port(node)}" if node else "the broker"
    credentials = broker.credentials
    if credentials.password_file:
        source = f"broker.password_file {credentials.password_file}"
    elif credentials.password_env:
        source = f"${credentials.password_env} (broker.password_env)"
    else:
        source = broker.url_source
    reason = (
        f"{where} refused the login of user {user!r}: check the user name and the password "
        f"({source})"
    )
    if user == DEFAULT_USER and node and not _loopback(urlsplit(node).hostname or ""):
        reason += f", and note that RabbitMQ lets {DEFAULT_USER} log in from localhost only"
    return BrokerFailure(True, reason, "login")


def _not_allowed(text: str, node: str | None, broker: BrokerConfig) -> BrokerFailure | None:
    detail = text.removeprefix("NOT_ALLOWED - ")
    where = f"the broker at {_host_port(node)}" if node else "the broker"
    if missing := _VHOST_MISSING.match(detail):
        vhost = missing.group("vhost").strip("'")  # quoted by some RabbitMQ versions
        return BrokerFailure(
            True,
            f"{where} has no vhost {vhost!r}: correct the vhost at the end of "
            f"{broker.url_source} (// is the default vhost '/'), or create it "
            f"(rabbitmqctl add_vhost {shlex.quote(vhost)})",
            "vhost",
        )
    if refused := _VHOST_REFUSED.match(detail):
        vhost, user = refused.group("vhost", "user")
        grant = f"rabbitmqctl set_permissions -p {shlex.quote(vhost)} {shlex.quote(user)}"
        return BrokerFailure(
            True,
            f"user {user!r} has no permissions on vhost {vhost!r} of {where}: grant them "
            f"({grant} '.*' '.*' '.*', or narrower: logfan needs {_needs(broker)})",
            "permission",
        )
    return None


def _tls(
    error: ssl.SSLCertVerificationError, node: str | None, broker: BrokerConfig
) -> BrokerFailure:
    tls = broker.credentials
    code = error.verify_code
    if code in _NAME_MISMATCH:
        fix = (
            "set broker.tls.server_name to a name the certificate carries"
            if tls.server_name
            else f"put a host name the certificate carries in {broker.url_source}, or set "
            "broker.tls.server_name to it"
        )
    elif code == _EXPIRED:
        fix = "renew the broker's certificate"
    elif code == _NOT_YET_VALID:
        fix = "check this host's clock, or wait until the certificate is valid"
    elif code in _UNTRUSTED:
        fix = (
            f"broker.tls.ca_file {tls.ca_file} did not sign it: point it to the CA that did"
            if tls.ca_file
            else "set broker.tls.ca_file to the CA that signed it"
        )
    else:
        fix = "check broker.tls (ca_file, server_name)"
    where = f"the broker at {_host_port(node)}" if node else "the broker"
    return BrokerFailure(
        True,
        f"the TLS certificate of {where} failed verification (certificate verify failed: "
        f"{str(error.verify_message).rstrip('.')}): {fix}",
        "tls",
    )


def _host_port(node: str) -> str:
    """``host:port`` of a node URL, the port defaulted by its scheme (5672, or 5671 for TLS)."""
    parts = urlsplit(node)
    host = parts.hostname or "?"
    try:
        port = parts.port
    except ValueError:
        port = None
    port = port or (5671 if parts.scheme == "amqps" else 5672)
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
