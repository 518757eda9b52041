"""Broker URLs: what they name, what is refused, and how they print without a password."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logfan.daemon.broker.url import (
    BrokerURL,
    BrokerURLError,
    error_text,
    has_password,
    node_urls,
    parse_broker_url,
    redact,
)

#: characters a password may hold in a URL without percent-encoding, besides '@', '/' and ';'
PASSWORD_CHARS = string.ascii_letters + string.digits + "-._~!$&'()*+,=:%"


class TestRedact:
    """Every password of a URL (or of a failover list) is shown as ``***``."""

    def test_password_hidden_user_kept(self) -> None:
        """The user stays readable; only the password becomes ``***``."""
        assert redact("amqp://logfan:s3cret@rabbit:5672//") == "amqp://logfan:***@rabbit:5672//"

    def test_every_node_of_a_list(self) -> None:
        """Each node of a ``;``-separated list has its own password hidden."""
        url = "amqp://a:one@h1:5672//;amqps://b:two@h2:5671/vh;amqp://c@h3//"
        assert redact(url) == "amqp://a:***@h1:5672//;amqps://b:***@h2:5671/vh;amqp://c@h3//"

    @pytest.mark.parametrize(
        "url",
        [
            "amqp://guest@rabbit:5672//",
            "amqp://rabbit:5672//",
            "amqp://127.0.0.1:5672//",
            "amqps://h1:5671//;amqp://h2:5672//",
            "filesystem:///var/lib/logfan/spool",
        ],
    )
    def test_url_without_password_unchanged(self, url: str) -> None:
        """A URL with no password, with or without a user or port, is left exactly as it is."""
        assert redact(url) == url

    def test_empty_user_with_password(self) -> None:
        """``amqp://:PASS@host`` (password, no user) still hides the password."""
        assert redact("amqp://:secret@h//") == "amqp://:***@h//"

    def test_url_inside_a_longer_text(self) -> None:
        """A URL quoted in an error message is redacted in place."""
        text = "cannot connect to amqp://u:secret@h:5672//: Connection refused"
        assert redact(text) == "cannot connect to amqp://u:***@h:5672//: Connection refused"

    @given(password=st.text(alphabet=PASSWORD_CHARS, min_size=1, max_size=40))
    def test_any_password_is_hidden(self, password: str) -> None:
        """Whatever a password is made of, the redacted URL is the URL with ``***`` for it."""
        url = f"amqp://user:{password}@rabbit.example.org:5672/vhost"
        assert redact(url) == "amqp://user:***@rabbit.example.org:5672/vhost"

    def test_password_with_an_at_sign_is_hidden_whole(self) -> None:
        """A password holding '@' (kombu takes the last '@' as the end of it) is hidden whole."""
        from kombu.utils.url import url_to_parts

        url = "amqp://logfan:p@ss@rabbit:5672//"
        assert url_to_parts(url).password == "p@ss", "what kombu connects with"  # noqa: S105
        assert redact(url) == "amqp://logfan:***@rabbit:5672//"


class TestHasPassword:
    """Whether any node URL carries a password."""

    @pytest.mark.parametrize(
        ("url", "expected"),
        [
            ("amqp://guest:guest@127.0.0.1:5672//", True),
            ("amqp://h1//;amqp://u:p@h2//", True),
            ("amqp://127.0.0.1:5672//", False),
            ("amqp://guest@127.0.0.1:5672//", False),
            ("amqp://h1:5672//;amqps://h2:5671//", False),
            ("filesystem:///var/lib/logfan/spool", False),
        ],
    )
    def test_only_a_password_counts(self, url: str, expected: bool) -> None:
        """True only when some node has ``user:password@``; a port is no password."""
        assert has_password(url) is expected


class TestErrorText:
    """An error as a person reads it."""

    def test_message_with_password_hidden(self) -> None:
        """The error's message, with any URL password shown as ``***``."""
        exc = OSError("amqp://u:secret@h//: Connection refused")
        assert error_text(exc) == "amqp://u:***@h//: Connection refused"

    def test_empty_message_gives_the_type(self) -> None:
        """An error with no message is named by its type."""
        assert error_text(TimeoutError()) == "TimeoutError"
        assert error_text(ConnectionResetError("")) == "ConnectionResetError"


class TestParseBrokerUrl:
    """Valid URLs become a BrokerURL; anything else a BrokerURLError saying what is valid."""

    @pytest.mark.parametrize(
        "url",
        [
            "amqp://guest:guest@127.0.0.1:5672//",
            "amqp://rabbit",
            "amqps://logfan@rabbit.example.org:5671/prod",
            "amqp://u:p@h1:5672//;amqp://u:p@h2:5672//",
            "amqp://h1//; amqps://h2//",
        ],
    )
    def test_amqp_urls_and_lists(self, url: str) -> None:
        """amqp://, amqps:// and ``;``-separated lists of them name a RabbitMQ, not a spool."""
        assert parse_broker_url(url) == BrokerURL(url=url, embedded=False, spool=None)

    def test_filesystem_absolute(self) -> None:
        """``filesystem:///DIR`` is the embedded broker with its spool at /DIR."""
        parsed = parse_broker_url("filesystem:///var/lib/logfan/spool")
        assert parsed.embedded
        assert parsed.spool == "/var/lib/logfan/spool"

    def test_filesystem_relative_to_the_working_directory(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``filesystem://DIR`` (two slashes) is DIR under the current folder, made absolute."""
        monkeypatch.chdir(tmp_path)
        parsed = parse_broker_url("filesystem://spool/logfan")
        assert parsed.embedded
        assert parsed.spool == str(tmp_path / "spool" / "logfan")

    def test_unsupported_scheme_hides_the_password(self) -> None:
        """Another scheme is refused, the URL quoted with its password hidden."""
        with pytest.raises(BrokerURLError) as caught:
            parse_broker_url("redis://guest:secret@127.0.0.1:6379/0")
        message = str(caught.value)
        assert "unsupported broker URL 'redis://guest:***@127.0.0.1:6379/0'" in message
        assert "amqp://USER:PASS@HOST:PORT/VHOST" in message, "says what would be valid"
        assert "secret" not in message

    @pytest.mark.parametrize("url", ["rabbit:5672", "", "AMQP://h//", "amqp:/h"])
    def test_no_scheme_refused(self, url: str) -> None:
        """A URL without one of the known ``SCHEME://`` is refused."""
        with pytest.raises(BrokerURLError, match="unsupported broker URL"):
            parse_broker_url(url)

    @pytest.mark.parametrize("url", ["amqp://u:secret@h:abc//", "amqp://u:secret@h:70000//"])
    def test_bad_port(self, url: str) -> None:
        """A port that is not a number from 0 to 65535 is refused, the password hidden."""
        with pytest.raises(BrokerURLError) as caught:
            parse_broker_url(url)
        assert str(caught.value).startswith("bad port in broker URL 'amqp://u:***@h:")
        assert "secret" not in str(caught.value)

    @pytest.mark.parametrize("url", ["amqp://u:secret@:5672//", "amqp:///vhost", "amqps://"])
    def test_no_host(self, url: str) -> None:
        """A URL without a host is refused, the password hidden."""
        with pytest.raises(BrokerURLError) as caught:
            parse_broker_url(url)
        assert str(caught.value).startswith("no host in broker URL")
        assert "secret" not in str(caught.value)

    @pytest.mark.parametrize(
        "url", ["amqp://h1//;filesystem:///spool", "amqp://h1//;redis://h2//", "amqp://h1//;"]
    )
    def test_list_mixing_schemes(self, url: str) -> None:
        """Every node of a list must be amqp:// or amqps:// (an empty node is none of them)."""
        with pytest.raises(BrokerURLError, match="every node of a URL list must be amqp://"):
            parse_broker_url(url)

    @pytest.mark.parametrize("url", ["filesystem://", "filesystem:///a;/b"])
    def test_filesystem_needs_one_folder(self, url: str) -> None:
        """The embedded broker takes exactly one folder: none, or a list, is refused."""
        with pytest.raises(BrokerURLError, match="expected filesystem:///DIR"):
            parse_broker_url(url)


class TestNodeUrls:
    """The nodes of a failover list."""

    def test_in_order_and_stripped(self) -> None:
        """Each node, in the order given, without the spaces around it."""
        assert node_urls("amqp://h1// ; amqps://h2:5671/vh;amqp://h3//") == [
            "amqp://h1//",
            "amqps://h2:5671/vh",
            "amqp://h3//",
        ]

    def test_single_url(self) -> None:
        """A single URL is a list of one."""
        assert node_urls("amqp://guest:guest@127.0.0.1:5672//") == [
            "amqp://guest:guest@127.0.0.1:5672//"
        ]
