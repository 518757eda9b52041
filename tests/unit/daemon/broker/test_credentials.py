"""Broker credentials: the password read at each connect, TLS options, readable secrets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from logfan.daemon.broker.credentials import BrokerCredentials, readable_by_others
from logfan.daemon.errors import LogfanError

ENV = "LOGFAN_TEST_BROKER_PASSWORD"


class TestPassword:
    """``BrokerCredentials.password()``: from the environment, a file, or none."""

    def test_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """``password_env`` names a variable whose value is the password, read at each call."""
        monkeypatch.setenv(ENV, "s3cret")
        credentials = BrokerCredentials(password_env=ENV)
        assert credentials.password() == "s3cret"
        monkeypatch.setenv(ENV, "rotated")
        assert credentials.password() == "rotated", "a rotated secret is picked up"

    def test_environment_variable_unset(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An unset variable is a LogfanError naming the setting and the variable."""
        monkeypatch.delenv(ENV, raising=False)
        with pytest.raises(LogfanError) as caught:
            BrokerCredentials(password_env=ENV).password()
        assert str(caught.value) == f"broker.password_env: ${ENV} is not set"

    @pytest.mark.parametrize(
        ("content", "password"),
        [
            ("s3cret\n", "s3cret"),
            ("s3cret\r\n", "s3cret"),
            ("s3cret", "s3cret"),
            ("s3cret\nsecond line\n", "s3cret"),
            (" spaced pass \n", " spaced pass "),
        ],
    )
    def test_first_line_of_the_file(self, tmp_path: Path, content: str, password: str) -> None:
        """``password_file``: its first line, without the trailing CR/LF (spaces are kept)."""
        path = tmp_path / "broker.pass"
        path.write_bytes(content.encode())
        assert BrokerCredentials(password_file=str(path)).password() == password

    def test_file_read_at_each_call(self, tmp_path: Path) -> None:
        """A password file rewritten between connects gives the new password."""
        path = tmp_path / "broker.pass"
        path.write_text("old\n")
        credentials = BrokerCredentials(password_file=str(path))
        assert credentials.password() == "old"
        path.write_text("new\n")
        assert credentials.password() == "new"

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that cannot be read is a LogfanError naming it and why."""
        path = tmp_path / "absent.pass"
        with pytest.raises(LogfanError) as caught:
            BrokerCredentials(password_file=str(path)).password()
        assert str(caught.value) == (
            f"broker.password_file: cannot read {path}: No such file or directory"
        )

    def test_folder_instead_of_a_file(self, tmp_path: Path) -> None:
        """A folder given as the password file is refused the same way."""
        with pytest.raises(LogfanError, match=r"cannot read .*: Is a directory"):
            BrokerCredentials(password_file=str(tmp_path)).password()

    def test_no_password_configured(self) -> None:
        """Neither a file nor a variable: None (the URL's own password, if any, is used)."""
        assert BrokerCredentials().password() is None


class TestSslOptions:
    """py-amqp's ssl options for one node."""

    def test_verified_by_default_against_the_host_as_written(self) -> None:
        """By default the chain is required and the name checked is the node's host, as is."""
        options = BrokerCredentials().ssl_options("localhost")
        assert options == {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": "localhost"}

    def test_server_name_overrides_the_host(self) -> None:
        """``server_name`` is the name checked, whatever host the URL names."""
        options = BrokerCredentials(server_name="rabbit.example.org").ssl_options("10.0.0.5")
        assert options["server_hostname"] == "rabbit.example.org"
        assert options["cert_reqs"] == ssl.CERT_REQUIRED

    def test_ca_and_client_certificate_passed(self) -> None:
        """The CA file, client certificate and its key are handed to py-amqp."""
        credentials = BrokerCredentials(
            ca_file="/etc/logfan/ca.pem", cert_file="/etc/logfan/c.pem", key_file="/etc/k.key"
        )
        assert credentials.ssl_options("rabbit") == {
            "cert_reqs": ssl.CERT_REQUIRED,
            "server_hostname": "rabbit",
            "ca_certs": "/etc/logfan/ca.pem",
            "certfile": "/etc/logfan/c.pem",
            "keyfile": "/etc/k.key",
        }

    def test_verify_off(self) -> None:
        """``verify: false``: no chain check and no host name to check."""
        options = BrokerCredentials(verify=False, ca_file="/etc/ca.pem").ssl_options("rabbit")
        assert options["cert_reqs"] == ssl.CERT_NONE
        assert "server_hostname" not in options

    def test_verify_off_keeps_the_client_certificate(self) -> None:
        """``verify: false`` turns off the checks of the broker only: the client cert is sent."""
        options = BrokerCredentials(
            cert_file="/etc/logfan/c.pem", key_file="/etc/logfan/c.key", verify=False
        ).ssl_options("rabbit")
        assert options["cert_reqs"] == ssl.CERT_NONE
        assert (options.get("certfile"), options.get("keyfile")) == (
            "/etc/logfan/c.pem",
            "/etc/logfan/c.key",
        )


class TestReadableByOthers:
    """Whether users other than the owner and group may read a file."""

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [(0o600, False), (0o640, False), (0o660, False), (0o644, True), (0o604, True)],
    )
    def test_by_mode(self, tmp_path: Path, mode: int, expected: bool) -> None:
        """Only the 'others may read' bit counts."""
        path = tmp_path / "broker.pass"
        path.write_text("x\n")
        path.chmod(mode)
        assert readable_by_others(str(path)) is expected

    def test_missing_file(self, tmp_path: Path) -> None:
        """A file that does not exist is readable by nobody."""
        assert readable_by_others(str(tmp_path / "absent")) is False
