"""The counters a sink's consumer keeps for Prometheus (served by the supervisor).

They are prometheus_client counters in multiprocess mode: a worker writes each value into a
memory-mapped file of its own, in the folder the supervisor made for this daemon run (see
``logfan.daemon.run.metrics``), so a count outlives the worker that made it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ENV", "NoMetrics", "SinkMetrics", "sink_metrics"]

#: the variable prometheus_client reads (at import) to put its values in memory-mapped files.
ENV = "PROMETHEUS_MULTIPROC_DIR"
#: write latency buckets, in seconds: a page-cache write takes tens of microseconds, an fsync
#: milliseconds, a TCP peer's acknowledgement up to seconds.
WRITE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                 0.5, 1.0, 2.5, 5.0, 10.0)  # fmt: skip

#: this daemon run's folder of metric files; set by the supervisor before it forks a worker
#: (a worker inherits it). None: metrics are off.
folder: str | None = None


class SinkMetrics:
    """One sink's counters, written by its consumer (in the worker process)."""

    def __init__(self, sink: str, sink_type: str) -> None:
        from prometheus_client import Counter, Histogram  # noqa: PLC0415 - only with metrics

        labels = {"sink": sink, "type": sink_type}

        def counter(name: str, doc: str) -> Any:
            return Counter(name, doc, ["sink", "type"], registry=None).labels(**labels)

        self.lines = counter("logfan_sink_lines_delivered", "Lines the sink wrote.")
        self.bytes = counter(
            "logfan_sink_bytes_delivered", "UTF-8 bytes of the lines' text the sink wrote."
        )
        self.batches = counter("logfan_sink_batches", "Batches the sink wrote.")
        self.dead_lettered = counter(
            "logfan_sink_lines_dead_lettered", "Lines the sink refused, put in its dead queue."
        )
        self.dropped = counter(
            "logfan_sink_lines_dropped", "Lines a full queue (max_queue) dead-lettered."
        )
        self.truncated = counter("logfan_sink_lines_truncated", "Lines cut to fit.")
        self.filtered = counter(
            "logfan_sink_lines_filtered", "Lines the sink's select did not take (acknowledged)."
        )
        self.retries = counter("logfan_sink_retries", "Failed writes, retried after a back-off.")
        self.reconnects = counter(
            "logfan_sink_reconnects", "Connections to the broker after a worker's first."
        )
        self.write_seconds = Histogram(
            "logfan_sink_write_seconds",
            "Time to write and flush one batch.",
            ["sink", "type"],
            buckets=WRITE_BUCKETS,
            registry=None,
        ).labels(**labels)


class _Nothing:
    """A counter or histogram that counts nothing (metrics are off)."""

    def inc(self, amount: float = 1) -> None:
        """Nothing."""

    def observe(self, amount: float) -> None:
        """Nothing."""


class NoMetrics:
    """SinkMetrics' shape, counting nothing."""

    def __init__(self) -> None:
        nothing = _Nothing()
        self.lines = self.bytes = self.batches = self.dead_lettered = self.dropped = nothing
        self.truncated = self.filtered = self.retries = self.reconnects = nothing
        self.write_seconds = nothing


def sink_metrics(sink: str, sink_type: str) -> SinkMetrics | NoMetrics:
    """The counters of a sink's consumer: real in a worker of a daemon serving metrics."""
    if folder is None:
        return NoMetrics()
    return SinkMetrics(sink, sink_type)
