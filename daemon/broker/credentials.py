"""Broker credentials and TLS: the password from a file or the environment, verified TLS."""

from __future__ import annotations

import dataclasses
import os
import ssl
import stat
from typing import Any

from logfan.daemon.errors import LogfanError


@dataclasses.dataclass(frozen=True)
class BrokerCredentials:
    """Where the broker password comes from, and how TLS is checked (``amqps://``)."""

    password_file: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    #: the name the broker's certificate must carry; None: the host in the URL.
    server_name: str | None = None
    verify: bool = True

    def password(self) -> str | None:
        """The password, read now (a rotated secret is picked up at the next connect)."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if value is None:
                raise LogfanError(f"broker.password_env: ${self.password_env} is not set")
            return value
        if self.password_file:
            try:
                with open(self.password_file, encoding="utf-8") as f:
                    return f.readline().rstrip("\r\n")
            except OSError as exc:
                raise LogfanError(
                    f"broker.password_file: cannot read {self.password_file}: {exc.strerror}"
                ) from None
        return None

    def ssl_options(self, host: str) -> dict[str, Any]:
        """py-amqp's ssl options for the node at ``host``: chain and host name checked (unless
        ``verify`` is off), the client certificate sent if there is one.

        kombu checks the host name only when ``server_hostname`` is given, and for None it puts
        in its own rewrite of the URL's host (``localhost`` becomes ``127.0.0.1``): the name is
        always given here, ``server_name`` or the node's host exactly as written.
        """
        options: dict[str, Any] = {"cert_reqs": ssl.CERT_NONE}
        if self.verify:
            options = {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": self.server_name or host}
        if self.verify and self.ca_file:
            options["ca_certs"] = self.ca_file
        if self.cert_file:  # sent whether or not the broker is checked: it may require one
            options["certfile"] = self.cert_file
            options["keyfile"] = self.key_file
        return options


def readable_by_others(path: str) -> bool:
    """True when users other than the owner and group may read ``path``."""
    try:
        return bool(os.stat(path).st_mode & stat.S_IROTH)
    except OSError:
        return False
