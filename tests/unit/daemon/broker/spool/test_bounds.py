"""The embedded broker's queue bounds: which declarations it takes, when a queue is over them."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kombu.exceptions import ChannelError

from logfan.daemon.broker.spool.bounds import Limits


class TestLimitsParse:
    """``Limits.parse``: the bounds a queue declaration sets, or a refusal naming the key."""

    @pytest.mark.parametrize(
        "arguments",
        [
            {},
            {"x-queue-type": "classic"},
            {"x-overflow": "drop-head"},
            {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "q.dead"},
            {"x-max-length": None},
        ],
    )
    def test_unbounded(self, arguments: dict[str, Any]) -> None:
        """Without x-max-length(-bytes) the queue is unbounded: None."""
        assert Limits.parse("q", arguments) is None

    def test_max_length(self) -> None:
        """x-max-length alone: a bound in messages; drops are deleted (no dead-letter exchange)."""
        assert Limits.parse("q", {"x-max-length": 10}) == Limits(max_length=10)

    def test_max_length_bytes_with_dead_letters(self) -> None:
        """x-max-length-bytes, dead-lettered through the default exchange to a named queue."""
        arguments = {
            "x-max-length-bytes": 1024,
            "x-overflow": "drop-head",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "logfan.all.dead",
        }
        assert Limits.parse("logfan.all", arguments) == Limits(
            max_bytes=1024, dead_letter_exchange="", dead_letter_routing_key="logfan.all.dead"
        )

    def test_zero_is_a_bound(self) -> None:
        """``x-max-length: 0`` is valid (a queue that keeps nothing), not unbounded."""
        assert Limits.parse("q", {"x-max-length": 0}) == Limits(max_length=0)

    @pytest.mark.parametrize(
        ("arguments", "key"),
        [
            ({"x-max-length": -1}, "x-max-length"),
            ({"x-max-length": True}, "x-max-length"),
            ({"x-max-length": "10"}, "x-max-length"),
            ({"x-max-length": 1.5}, "x-max-length"),
            ({"x-max-length-bytes": -5}, "x-max-length-bytes"),
            ({"x-max-length-bytes": False}, "x-max-length-bytes"),
            ({"x-max-length": 5, "x-overflow": "reject-publish"}, "x-overflow"),
            ({"x-max-length": 5, "x-overflow": "reject-publish-dlx"}, "x-overflow"),
            ({"x-max-length": 5, "x-dead-letter-exchange": "logs"}, "x-dead-letter-exchange"),
            ({"x-max-length": 5, "x-dead-letter-routing-key": "d"}, "x-dead-letter-routing-key"),
            (
                {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": "../escape"},
                "x-dead-letter-routing-key",
            ),
            (
                {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": ""},
                "x-dead-letter-routing-key",
            ),
            (
                {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": 7},
                "x-dead-letter-routing-key",
            ),
        ],
    )
    def test_refusals_name_the_key(self, arguments: dict[str, Any], key: str) -> None:
        """What the embedded broker cannot honour is a PRECONDITION_FAILED naming the key."""
        with pytest.raises(ChannelError) as caught:
            Limits.parse("logfan.all", arguments)
        assert str(caught.value).startswith(f"PRECONDITION_FAILED - queue 'logfan.all': {key}: "), (
            str(caught.value)
        )


class TestLimitsExceeded:
    """``Limits.exceeded``: over a bound means strictly more than it."""

    def test_message_bound(self) -> None:
        """A bound of 3 messages holds 3, not 4; the bytes do not matter."""
        limits = Limits(max_length=3)
        assert not limits.exceeded(3, 10**12)
        assert limits.exceeded(4, 0)

    def test_byte_bound(self) -> None:
        """A bound of 100 bytes holds 100, not 101; the count does not matter."""
        limits = Limits(max_bytes=100)
        assert not limits.exceeded(10**6, 100)
        assert limits.exceeded(1, 101)

    @given(
        max_length=st.none() | st.integers(0, 50),
        max_bytes=st.none() | st.integers(0, 5000),
        count=st.integers(0, 60),
        size=st.integers(0, 6000),
    )
    def test_either_bound(
        self, max_length: int | None, max_bytes: int | None, count: int, size: int
    ) -> None:
        """Exceeded exactly when the count is over its bound or the size over its own."""
        over_count = max_length is not None and count > max_length
        over_size = max_bytes is not None and size > max_bytes
        assert Limits(max_length, max_bytes).exceeded(count, size) is (over_count or over_size)


class TestLimitsDeadLetterQueue:
    """``Limits.dead_letter_queue``: where a dropped message goes (None: deleted)."""

    def test_no_dead_letter_exchange_deletes(self) -> None:
        """Without a dead-letter exchange a dropped message is deleted, as on RabbitMQ."""
        assert Limits(max_length=1).dead_letter_queue("q", "q") is None

    def test_configured_routing_key(self) -> None:
        """x-dead-letter-routing-key names the target, whatever the message's routing key."""
        limits = Limits(max_length=1, dead_letter_exchange="", dead_letter_routing_key="q.dead")
        assert limits.dead_letter_queue("q", "something") == "q.dead"

    def test_routing_key_defaults_to_the_messages(self) -> None:
        """Without x-dead-letter-routing-key, the message's own routing key is the target."""
        limits = Limits(max_length=1, dead_letter_exchange="")
        assert limits.dead_letter_queue("q", "elsewhere") == "elsewhere"

    def test_own_queue_deletes(self) -> None:
        """A message that would be dead-lettered into its own queue is deleted."""
        limits = Limits(max_length=1, dead_letter_exchange="", dead_letter_routing_key="q")
        assert limits.dead_letter_queue("q", "other") is None
        assert Limits(max_length=1, dead_letter_exchange="").dead_letter_queue("q", "q") is None

    @pytest.mark.parametrize("routing_key", ["", "../escape", "a/b"])
    def test_no_valid_target_deletes(self, routing_key: str) -> None:
        """A message routing key that names no valid queue gives no target."""
        limits = Limits(max_length=1, dead_letter_exchange="")
        assert limits.dead_letter_queue("q", routing_key) is None
