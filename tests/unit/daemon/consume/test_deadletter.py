"""Why a dead letter is there: logfan's own reason, or the broker's x-death."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from logfan.daemon.consume.deadletter import ERROR_HEADER, reason_of


def delivery(headers: dict[str, Any] | None) -> SimpleNamespace:
    """A stand-in for a kombu message with these headers."""
    return SimpleNamespace(headers=headers)


class TestReasonOf:
    """``reason_of``: one readable reason per dead-lettered delivery."""

    def test_logfan_error_header(self) -> None:
        """A line logfan's consumer dead-lettered carries its reason in x-logfan-error."""
        headers = {ERROR_HEADER: "sink refused: disk full", "x-logfan-sink": "all"}
        assert reason_of(delivery(headers)) == "sink refused: disk full"

    def test_logfan_header_wins_over_x_death(self) -> None:
        """logfan's own reason is preferred to the broker's."""
        headers = {ERROR_HEADER: "bad line", "x-death": [{"reason": "maxlen", "queue": "q"}]}
        assert reason_of(delivery(headers)) == "bad line"

    def test_non_text_logfan_header(self) -> None:
        """A header value of another type is shown as text."""
        assert reason_of(delivery({ERROR_HEADER: 42})) == "42"

    @pytest.mark.parametrize("reason", ["maxlen", b"maxlen"])
    def test_full_queue(self, reason: str | bytes) -> None:
        """The broker's ``maxlen`` is a full queue dropping its oldest line (max_queue)."""
        headers = {"x-death": [{"reason": reason, "queue": "logfan.all", "count": 1}]}
        assert reason_of(delivery(headers)) == "dropped: queue logfan.all was full (max_queue)"

    @pytest.mark.parametrize(
        ("reason", "text"),
        [
            ("rejected", "dead-lettered by the broker: rejected"),
            (b"expired", "dead-lettered by the broker: expired"),
            ("delivery_limit", "dead-lettered by the broker: delivery_limit"),
        ],
    )
    def test_other_broker_reasons(self, reason: str | bytes, text: str) -> None:
        """Any other x-death reason is given as the broker's, decoded when it is bytes."""
        assert reason_of(delivery({"x-death": [{"reason": reason, "queue": "q"}]})) == text

    def test_latest_death_counts(self) -> None:
        """The first x-death entry (the latest death, as RabbitMQ orders them) is the reason."""
        deaths = [{"reason": "expired", "queue": "a"}, {"reason": "maxlen", "queue": "b"}]
        assert reason_of(delivery({"x-death": deaths})) == "dead-lettered by the broker: expired"

    @pytest.mark.parametrize(
        "headers",
        [None, {}, {"x-death": []}, {"x-death": None}, {"x-death": ["maxlen"]}, {"other": "x"}],
    )
    def test_nothing_known(self, headers: dict[str, Any] | None) -> None:
        """No header that says why: ``unknown``."""
        assert reason_of(delivery(headers)) == "unknown"
