"""A consumer's look at its queue: the backlog, and a bounded queue's drops."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

from logfan.daemon.config.sink import SinkConfig
from logfan.daemon.consume.counters import NoMetrics
from logfan.daemon.consume.figures import SinkFigures
from logfan.daemon.consume.queuewatch import QueueWatch

if TYPE_CHECKING:
    from logfan.daemon.consume.consumer import SinkConsumer


class Log:
    """Records what would be logged (structlog's warning and info with key-values)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []

    def warning(self, event: str, **values: Any) -> None:
        self.events.append(("warning", event, values))

    def info(self, event: str, **values: Any) -> None:
        self.events.append(("info", event, values))


class Channel:
    """Answers passive queue declarations with the depths it is given; records the asks."""

    def __init__(self, **depths: int) -> None:
        self.depths = {name.replace("_", "."): count for name, count in depths.items()}
        self.asked: list[str] = []

    def queue_declare(self, *, queue: str, passive: bool) -> SimpleNamespace:
        assert passive, "a consumer only looks at its queues"
        self.asked.append(queue)
        return SimpleNamespace(message_count=self.depths[queue])


def watch_of(config: SinkConfig) -> tuple[QueueWatch, SinkFigures, Log]:
    """A QueueWatch over a stand-in consumer of ``config``."""
    figures, log = SinkFigures(), Log()
    owner = SimpleNamespace(sink_config=config, figures=figures, log=log, metrics=NoMetrics())
    return QueueWatch(cast("SinkConsumer", owner)), figures, log


def check_now(watch: QueueWatch, channel: Channel) -> None:
    """Check at once, as if QUEUE_CHECK had passed since the last check."""
    watch.next_check = 0.0
    watch.check(channel)


BOUNDED = SinkConfig("all", "file", {}, max_queue=100)


class TestQueueWatch:
    """``QueueWatch.check``: backlog, drops, one warning per episode, spaced checks."""

    def test_backlog_is_set(self) -> None:
        """The queue's message count becomes the figures' backlog."""
        watch, figures, _ = watch_of(SinkConfig("all", "file", {}))
        assert figures.backlog is None
        channel = Channel(logfan_all=42)
        watch.check(channel)
        assert figures.backlog == 42

    def test_unbounded_never_asks_for_the_dead_letter_queue(self) -> None:
        """A sink without max_queue cannot drop: only its own queue is looked at."""
        watch, figures, log = watch_of(SinkConfig("all", "file", {}))
        channel = Channel(logfan_all=3)
        for _ in range(3):
            check_now(watch, channel)
        assert channel.asked == ["logfan.all"] * 3
        assert figures.dropped == 0
        assert log.events == []

    def test_drops_are_growth_beyond_our_own_dead_letters(self) -> None:
        """Drops: what the dead-letter queue gained minus the lines the consumer put there."""
        watch, figures, _ = watch_of(BOUNDED)
        channel = Channel(logfan_all=100, logfan_all_dead=10)
        check_now(watch, channel)
        assert channel.asked == ["logfan.all", "logfan.all.dead"]
        assert figures.dropped == 0, "the first look is only the baseline"
        channel.depths["logfan.all.dead"] = 25
        figures.dead_lettered += 4
        check_now(watch, channel)
        assert figures.dropped == 11
        figures.dead_lettered += 2
        channel.depths["logfan.all.dead"] = 27
        check_now(watch, channel)
        assert figures.dropped == 11, "growth that is all our own is no drop"

    def test_bounded_in_bytes_is_watched_too(self) -> None:
        """max_queue in bytes also makes the dead-letter queue watched."""
        watch, figures, _ = watch_of(SinkConfig("all", "file", {}, max_queue_bytes=1 << 20))
        channel = Channel(logfan_all=5, logfan_all_dead=0)
        check_now(watch, channel)
        channel.depths["logfan.all.dead"] = 7
        check_now(watch, channel)
        assert figures.dropped == 7

    def test_dead_letter_queue_emptied(self) -> None:
        """A dead-letter queue that shrank (replayed, purged) counts no drops."""
        watch, figures, log = watch_of(BOUNDED)
        channel = Channel(logfan_all=0, logfan_all_dead=50)
        check_now(watch, channel)
        channel.depths["logfan.all.dead"] = 0
        check_now(watch, channel)
        assert figures.dropped == 0
        assert log.events == []

    def test_one_warning_per_episode_and_info_at_its_end(self) -> None:
        """Drops warn once until a check sees none; then an info; new drops warn again."""
        watch, figures, log = watch_of(BOUNDED)
        channel = Channel(logfan_all=100, logfan_all_dead=0)
        check_now(watch, channel)
        for dead in (5, 9, 12):  # one episode over three checks
            channel.depths["logfan.all.dead"] = dead
            check_now(watch, channel)
        check_now(watch, channel)  # no new drops: the episode ends
        channel.depths["logfan.all.dead"] = 20
        check_now(watch, channel)  # a new episode
        assert [(level, event) for level, event, _ in log.events] == [
            ("warning", "queue full: dropping its oldest lines into the dead-letter queue"),
            ("info", "queue no longer full"),
            ("warning", "queue full: dropping its oldest lines into the dead-letter queue"),
        ]
        assert log.events[0][2] == {
            "queue": "logfan.all",
            "dead_queue": "logfan.all.dead",
            "max_queue": 100,
        }
        assert log.events[1][2] == {"dropped_total": 12}
        assert figures.dropped == 20

    def test_checks_are_spaced(self) -> None:
        """Right after a check the broker is not asked again until QUEUE_CHECK has passed."""
        watch, figures, _ = watch_of(SinkConfig("all", "file", {}))
        channel = Channel(logfan_all=1)
        watch.check(channel)
        channel.depths["logfan.all"] = 2
        watch.check(channel)
        assert channel.asked == ["logfan.all"]
        assert figures.backlog == 1
        watch.next_check = 0.0  # the time is up
        watch.check(channel)
        assert channel.asked == ["logfan.all", "logfan.all"]
        assert figures.backlog == 2
