"""What logfan declares on the broker, built from the config alone (no connection)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kombu import Queue

from logfan.daemon.broker.topology import (
    dead_queue,
    exchange,
    mismatch_advice,
    queue_arguments,
    sink_queue,
)
from logfan.daemon.config.loader import BrokerConfig
from logfan.daemon.config.sink import DELIVERY_LIMIT, SinkConfig


def arguments_of(queue: Queue) -> Any:
    """A kombu Queue's declared arguments (kombu sets the attribute without annotating it)."""
    return queue.as_dict()["queue_arguments"]


def sink(**settings: Any) -> SinkConfig:
    """The sink ``all`` of type file with ``settings``."""
    return SinkConfig("all", "file", {"type": "file", "path": "/tmp/all.log"}, **settings)


class TestQueueArguments:
    """The sink queue's arguments, from its type and bounds."""

    def test_classic_unbounded_has_none(self) -> None:
        """A classic queue without max_queue is declared without arguments."""
        assert queue_arguments(sink()) == {}

    def test_quorum(self) -> None:
        """Quorum: the type, the delivery limit, and dead letters into the sink's own queue."""
        assert queue_arguments(sink(queue_type="quorum")) == {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "logfan.all.dead",
        }

    def test_max_queue_drops_the_head_into_the_dead_letter_queue(self) -> None:
        """A bound in messages: drop-head through the default exchange into ``.dead``."""
        assert queue_arguments(sink(max_queue=100_000)) == {
            "x-overflow": "drop-head",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "logfan.all.dead",
            "x-max-length": 100_000,
        }

    def test_max_queue_bytes(self) -> None:
        """A bound in bytes: the same drop-head, with x-max-length-bytes."""
        assert queue_arguments(sink(max_queue_bytes=512 << 20)) == {
            "x-overflow": "drop-head",
            "x-dead-letter-exchange": "",
            "x-dead-letter-routing-key": "logfan.all.dead",
            "x-max-length-bytes": 512 << 20,
        }

    def test_per_host_queue_dead_letters_into_its_own_dead_queue(self) -> None:
        """With ``scope: per-host`` the dead letters go to that host's own dead-letter queue."""
        args = queue_arguments(sink(scope="per-host", host="web1", max_queue=10))
        assert args["x-dead-letter-routing-key"] == "logfan.all.web1.dead"

    @given(
        queue_type=st.sampled_from(["classic", "quorum"]),
        max_queue=st.none() | st.integers(1, 10**9),
        max_queue_bytes=st.none() | st.integers(1, 10**12),
    )
    def test_never_reject_publish(
        self, queue_type: str, max_queue: int | None, max_queue_bytes: int | None
    ) -> None:
        """Any type and bounds: a bounded queue drops its head, never rejects publishes."""
        args = queue_arguments(
            sink(queue_type=queue_type, max_queue=max_queue, max_queue_bytes=max_queue_bytes)
        )
        bounded = max_queue is not None or max_queue_bytes is not None
        assert args.get("x-overflow") == ("drop-head" if bounded else None)
        assert args.get("x-max-length") == max_queue
        assert args.get("x-max-length-bytes") == max_queue_bytes
        assert (args.get("x-queue-type") == "quorum") is (queue_type == "quorum")
        if bounded or queue_type == "quorum":
            assert args["x-dead-letter-exchange"] == ""
            assert args["x-dead-letter-routing-key"] == "logfan.all.dead"
        else:
            assert args == {}


class TestSinkQueue:
    """The sink's durable queue, bound to the fanout exchange."""

    def test_durable_and_bound(self) -> None:
        """Named ``logfan.<sink>``, durable, not auto-deleted, bound to the configured exchange."""
        queue = sink_queue(BrokerConfig(exchange="applogs"), sink())
        assert queue.name == "logfan.all"
        assert queue.durable
        assert not queue.auto_delete
        assert queue.exchange.name == "applogs"
        assert queue.exchange.type == "fanout"
        assert queue.routing_key == ""
        assert arguments_of(queue) is None, "no arguments at all when none are needed"

    def test_arguments_of_a_bounded_queue(self) -> None:
        """A bounded queue is declared with its arguments."""
        config = sink(max_queue=5)
        assert arguments_of(sink_queue(BrokerConfig(), config)) == queue_arguments(config)


class TestDeadQueue:
    """The sink's dead-letter queue."""

    def test_classic(self) -> None:
        """``logfan.<sink>.dead``: durable, on the default exchange, without arguments."""
        queue = dead_queue(sink())
        assert queue.name == "logfan.all.dead"
        assert queue.durable
        assert queue.exchange.name == ""
        assert queue.routing_key == "logfan.all.dead"
        assert arguments_of(queue) is None

    def test_quorum_follows_the_sink(self) -> None:
        """The dead-letter queue of a quorum sink queue is a quorum queue too."""
        assert arguments_of(dead_queue(sink(queue_type="quorum"))) == {"x-queue-type": "quorum"}


class TestExchange:
    """The one fanout exchange."""

    @pytest.mark.parametrize("durable", [False, True])
    def test_fanout_with_durability_from_config(self, durable: bool) -> None:
        """A fanout exchange named and made durable (or not) as the broker section says."""
        ex = exchange(BrokerConfig(exchange="logs", exchange_durable=durable))
        assert (ex.name, ex.type, ex.durable, ex.auto_delete) == ("logs", "fanout", durable, False)

    def test_not_durable_by_default(self) -> None:
        """By default not durable, like the tutorial's ``logs`` exchange its publishers declare."""
        assert exchange(BrokerConfig()).durable is False


class TestMismatchAdvice:
    """What to tell a person whose queue exists with other arguments."""

    def test_names_the_queue_and_the_delete_command(self) -> None:
        """The queue, the wanted arguments, and ``rabbitmqctl delete_queue QUEUE``."""
        config = sink(queue_type="quorum")
        advice = mismatch_advice(BrokerConfig(), config)
        assert advice.startswith("queue logfan.all exists with other arguments")
        assert str(queue_arguments(config)) in advice
        assert "rabbitmqctl delete_queue logfan.all)" in advice

    def test_no_arguments_said_as_none(self) -> None:
        """A classic unbounded sink asks for no arguments: said as ``none``."""
        assert "config asks for (none)" in mismatch_advice(BrokerConfig(), sink())
