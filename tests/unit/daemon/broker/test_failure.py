"""``explain``: a broker failure as permanent or transient, in one sentence with its fix.

The exceptions are built as py-amqp and kombu build them (their texts were taken from
RabbitMQ 3.10; tests/e2e/test_broker_errors.py raises each for real).
"""

from __future__ import annotations

import socket
import ssl

import pytest
from amqp.exceptions import AMQPError, ChannelError, error_for_code
from amqp.exceptions import ConnectionError as AMQPConnectionError
from kombu.exceptions import OperationalError

from logfan.daemon.broker.credentials import BrokerCredentials
from logfan.daemon.broker.failure import BrokerFailure, ConnectFailed, explain
from logfan.daemon.config.loader import BrokerConfig

LOGIN_REFUSED = (
    "ACCESS_REFUSED - Login was refused using authentication mechanism PLAIN. For details see "
    "the broker logfile."
)
URL = "amqp://logfan:s3cret@rabbit1:5672/prod"
#: the permissions logfan needs, as the sentences name them (exchange ``logs``).
NEEDS = (
    "configure, write and read on exchange 'logs' and on the queues logfan.*, and write on "
    "amq.default for dead letters"
)
#: the (class, method) ids py-amqp names these methods by.
METHODS = {
    "Exchange.declare": (40, 10),
    "Queue.declare": (50, 10),
    "Queue.bind": (50, 20),
    "Basic.consume": (60, 20),
    "Basic.publish": (60, 40),
}


def broker(url: str = URL, **credentials: str) -> BrokerConfig:
    return BrokerConfig(
        url=url,
        exchange="logs",
        credentials=BrokerCredentials(
            password_file=credentials.get("password_file"),
            password_env=credentials.get("password_env"),
            ca_file=credentials.get("ca_file"),
            server_name=credentials.get("server_name"),
        ),
    )


def amqp_error(code: int, text: str, method: tuple[int, int], channel: bool = False) -> AMQPError:
    """The error py-amqp raises when the broker closes the connection (or a channel)."""
    error: AMQPError = error_for_code(
        code, text, method, ChannelError if channel else AMQPConnectionError
    )
    return error


def login_refused() -> AMQPError:
    return amqp_error(403, LOGIN_REFUSED, (0, 0))


def connection_open(text: str) -> AMQPError:
    return amqp_error(530, text, (10, 40))


def wrapped(inner: OSError) -> OperationalError:
    """``inner`` as kombu re-raises a socket or TLS error: an OperationalError caused by it."""
    try:
        try:
            raise inner
        except OSError as exc:
            raise OperationalError(str(exc)) from exc
    except OperationalError as outer:
        return outer


def refused() -> OperationalError:
    return wrapped(ConnectionRefusedError(111, "Connection refused"))


def cert_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    """An SSLCertVerificationError as the ssl module makes it (its verify fields set after)."""
    error = ssl.SSLCertVerificationError(
        1, f"[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: {message} (_ssl.c:1006)"
    )
    error.verify_code = code
    error.verify_message = message
    return error


def on(url: str, exc: BaseException, **credentials: str) -> BrokerFailure:
    """What ``explain`` says of ``exc`` raised connecting to the one node ``url``."""
    return explain(ConnectFailed([(url, exc)]), broker(url, **credentials))


class TestLogin:
    """ACCESS_REFUSED at login: permanent, the user named, the password never."""

    def test_names_the_user_and_where_the_password_comes_from(self) -> None:
        failure = on(URL, login_refused())
        assert failure == BrokerFailure(
            True,
            "the broker at rabbit1:5672 refused the login of user 'logfan': check the user name "
            "and the password (broker.url)",
            "login",
            "AccessRefused",
        )
        assert "s3cret" not in failure.reason

    @pytest.mark.parametrize(
        ("credentials", "source"),
        [
            (
                {"password_file": "/etc/logfan/broker.password"},
                "broker.password_file /etc/logfan/broker.password",
            ),
            ({"password_env": "LOGFAN_PW"}, "$LOGFAN_PW (broker.password_env)"),
        ],
    )
    def test_password_source_named(self, credentials: dict[str, str], source: str) -> None:
        failure = on("amqp://logfan@rabbit1//", login_refused(), **credentials)
        assert failure.reason.endswith(f"check the user name and the password ({source})")

    def test_user_name_decoded_and_defaulted(self) -> None:
        """``%40`` is ``@`` in the user name; a URL without one logs in as kombu's guest."""
        assert "user 'log@fan'" in on("amqp://log%40fan:pw@h//", login_refused()).reason
        assert "user 'guest'" in on("amqp://h//", login_refused()).reason

    @pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
    def test_guest_on_loopback(self, host: str) -> None:
        reason = on(f"amqp://guest@{host}//", login_refused()).reason
        assert "localhost only" not in reason

    def test_guest_from_afar_is_reminded_of_localhost_only(self) -> None:
        """RabbitMQ refuses guest from any host but localhost with the same words."""
        assert on("amqp://guest@rabbit1//", login_refused()).reason.endswith(
            "(broker.url), and note that RabbitMQ lets guest log in from localhost only"
        )

    def test_ports_by_scheme_and_ipv6(self) -> None:
        assert "at rabbit1:5671 " in on("amqps://u@rabbit1//", login_refused()).reason
        assert "at rabbit1:5672 " in on("amqp://u@rabbit1//", login_refused()).reason
        assert "at [fd00::1]:5999 " in on("amqp://u@[fd00::1]:5999//", login_refused()).reason


class TestVhost:
    """NOT_ALLOWED at Connection.open: a vhost missing, or no permission on it."""

    @pytest.mark.parametrize("named", ["prod", "'prod'"])
    def test_missing_vhost(self, named: str) -> None:
        error = connection_open(f"NOT_ALLOWED - vhost {named} not found")
        assert on(URL, error) == BrokerFailure(
            True,
            "the broker at rabbit1:5672 has no vhost 'prod': correct the vhost at the end of "
            "broker.url (// is the default vhost '/'), or create it (rabbitmqctl add_vhost prod)",
            "vhost",
            "NotAllowed",
        )

    def test_no_permissions_on_the_vhost(self) -> None:
        text = "NOT_ALLOWED - access to vhost 'my logs' refused for user 'logfan'"
        error = connection_open(text)
        assert on(URL, error) == BrokerFailure(
            True,
            "user 'logfan' has no permissions on vhost 'my logs' of the broker at rabbit1:5672: "
            "grant them (rabbitmqctl set_permissions -p 'my logs' logfan '.*' '.*' '.*', or "
            f"narrower: logfan needs {NEEDS})",
            "permission",
            "NotAllowed",
        )

    @pytest.mark.parametrize(
        "suffix", [": connection limit (10) is reached", ": vhost 'prod' is down"]
    )
    def test_refusals_that_may_heal_are_transient(self, suffix: str) -> None:
        """The same words with a limit or a vhost down after them: retried, said as is."""
        text = f"NOT_ALLOWED - access to vhost 'prod' refused for user 'logfan'{suffix}"
        failure = on(URL, connection_open(text))
        assert not failure.permanent
        assert failure.reason == f"Connection.open: (530) {text}"


class TestPermissions:
    """ACCESS_REFUSED on a channel operation: which permission, on what, and the fix."""

    @pytest.mark.parametrize(
        ("method", "kind", "needed"),
        [
            ("Exchange.declare", "exchange", "configure"),
            ("Queue.declare", "queue", "configure"),
            ("Queue.bind", "queue", "write"),
            ("Queue.bind", "exchange", "read"),
            ("Basic.consume", "queue", "read"),
            ("Basic.publish", "exchange", "write"),
        ],
    )
    def test_the_permission_the_method_needs(self, method: str, kind: str, needed: str) -> None:
        text = (
            f"ACCESS_REFUSED - access to {kind} 'logfan.all' in vhost 'prod' refused for user 'u'"
        )
        failure = explain(amqp_error(403, text, METHODS[method], channel=True), broker())
        assert failure == BrokerFailure(
            True,
            f"user 'u' lacks the {needed} permission on {kind} 'logfan.all' in vhost 'prod' "
            f"({method} was refused): grant it with rabbitmqctl set_permissions (logfan needs "
            f"{NEEDS})",
            "permission",
            "AccessRefused",
        )

    def test_other_refusal_keeps_the_brokers_words(self) -> None:
        text = "ACCESS_REFUSED - operation not permitted on the default exchange"
        failure = explain(amqp_error(403, text, (60, 40), channel=True), broker())
        assert failure.permanent
        assert failure.reason == (
            f"the broker refused Basic.publish ({text}): check the user's permissions "
            "(rabbitmqctl list_user_permissions USER)"
        )


class TestTLS:
    """A certificate that fails verification: permanent, the check that failed, the fix."""

    @pytest.mark.parametrize(
        ("code", "message"),
        [
            (62, "Hostname mismatch, certificate is not valid for 'rabbit1'."),
            (64, "IP address mismatch, certificate is not valid for '10.0.0.1'."),
        ],
    )
    def test_name_mismatch(self, code: int, message: str) -> None:
        failure = on("amqps://u@rabbit1//", wrapped(cert_error(code, message)))
        assert failure == BrokerFailure(
            True,
            "the TLS certificate of the broker at rabbit1:5671 failed verification (certificate "
            f"verify failed: {message.rstrip('.')}): put a host name the certificate carries in "
            "broker.url, or set broker.tls.server_name to it",
            "tls",
            "OperationalError",
        )

    def test_name_mismatch_with_a_server_name(self) -> None:
        error = wrapped(cert_error(62, "Hostname mismatch, certificate is not valid for 'x'."))
        reason = on("amqps://u@rabbit1//", error, server_name="x").reason
        assert reason.endswith("): set broker.tls.server_name to a name the certificate carries")

    def test_untrusted(self) -> None:
        error = wrapped(cert_error(20, "unable to get local issuer certificate"))
        assert on("amqps://u@rabbit1//", error).reason.endswith(
            "(certificate verify failed: unable to get local issuer certificate): set "
            "broker.tls.ca_file to the CA that signed it"
        )
        assert on("amqps://u@rabbit1//", error, ca_file="/etc/ca.pem").reason.endswith(
            "): broker.tls.ca_file /etc/ca.pem did not sign it: point it to the CA that did"
        )

    def test_expired(self) -> None:
        error = wrapped(cert_error(10, "certificate has expired"))
        assert on("amqps://u@rabbit1//", error).reason.endswith(
            "(certificate verify failed: certificate has expired): renew the broker's certificate"
        )


class TestTransient:
    """Failures that may heal: retried; the sentence still says where and what to check."""

    def test_refused_names_host_and_port(self) -> None:
        assert on("amqp://u:pw@127.0.0.1:5673//", refused()) == BrokerFailure(
            False,
            "nothing listens on 127.0.0.1:5673: is the broker running, and is the port right?",
            "refused",
            "OperationalError",
        )

    def test_unknown_host(self) -> None:
        error = wrapped(socket.gaierror(-2, "Name or service not known"))
        assert on("amqp://u@rabbitt1//", error) == BrokerFailure(
            False,
            "cannot resolve the broker's host name 'rabbitt1' (Name or service not known): is "
            "the host in broker.url right?",
            "unresolved",
            "OperationalError",
        )

    def test_anything_else_is_said_as_is_with_passwords_hidden(self) -> None:
        error = OSError("lost amqp://u:s3cret@rabbit1// (timed out)")
        assert on(URL, error) == BrokerFailure(
            False, "lost amqp://u:***@rabbit1// (timed out)", "other", "OSError"
        )

    def test_a_timeout_while_handling_a_refusal_is_not_the_refusal(self) -> None:
        """Only kombu's wrappers are followed to their context, not any exception's."""
        try:
            try:
                raise login_refused()
            except AMQPError:
                raise TimeoutError("timed out") from None
        except TimeoutError as exc:
            timeout = exc
        timeout.__suppress_context__ = False
        assert not on(URL, timeout).permanent


class TestNodes:
    """A failover list: one verdict for all the nodes that failed."""

    A, B = "amqp://u@10.0.0.1:5672//", "amqp://u@10.0.0.2:5673//"

    def test_all_refused(self) -> None:
        failure = explain(ConnectFailed([(self.A, refused()), (self.B, refused())]), broker())
        assert failure.reason == (
            "nothing listens on 10.0.0.1:5672 or 10.0.0.2:5673: are the brokers running, and "
            "the ports right?"
        )
        assert not failure.permanent

    def test_a_login_refused_by_one_node_is_final(self) -> None:
        """Users are cluster-wide: the node that answered speaks for all."""
        failure = explain(ConnectFailed([(self.A, refused()), (self.B, login_refused())]), broker())
        assert failure.permanent
        assert failure.reason.startswith("the broker at 10.0.0.2:5673 refused the login of user")

    def test_a_certificate_is_one_nodes_own(self) -> None:
        """One node's certificate fails, the other node is down: it may come back, so retried;
        both reasons are said."""
        tls = wrapped(cert_error(20, "unable to get local issuer certificate"))
        failure = explain(ConnectFailed([(self.A, tls), (self.B, refused())]), broker())
        assert not failure.permanent
        assert failure.reason.startswith("the TLS certificate of the broker at 10.0.0.1:5672 ")
        assert failure.reason.endswith(
            "; nothing listens on 10.0.0.2:5673: is the broker running, and is the port right?"
        )

    def test_every_node_failing_for_good_is_final(self) -> None:
        tls = wrapped(cert_error(20, "unable to get local issuer certificate"))
        failure = explain(ConnectFailed([(self.A, tls), (self.B, tls)]), broker())
        assert failure.permanent
        assert failure.reason.startswith("the TLS certificate of the broker at 10.0.0.1:5672 ")

    def test_other_errors_are_named_by_their_node(self) -> None:
        failure = explain(
            ConnectFailed([(self.A, TimeoutError("timed out")), (self.B, refused())]), broker()
        )
        assert failure.reason == (
            "10.0.0.1:5672: timed out; nothing listens on 10.0.0.2:5673: is the broker running, "
            "and is the port right?"
        )

    def test_a_bare_error_with_several_nodes_names_no_node(self) -> None:
        failure = explain(login_refused(), broker(f"{self.A};{self.B}"))
        assert failure.reason.startswith("the broker refused the login of user 'u': check")
