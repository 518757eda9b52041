"""The HTTP sink, tested with logfan.sinks.testing only, against a real endpoint on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from httpkit import Endpoint
from logfan_http import HttpSink

from logfan.sinks.base import Options, PermanentSinkError, RetryableSinkError
from logfan.sinks.testing import check_sink, make_records


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    server = Endpoint()
    yield server
    server.stop()


def sink(url: str) -> HttpSink:
    return HttpSink("web", Options("web", {"url": url, "timeout": 5}))


def test_keeps_the_contract(endpoint: Endpoint) -> None:
    """check_sink: built, opened, written, retried and closed as logfan does; nothing lost."""
    check_sink(
        HttpSink,
        {"url": endpoint.url},
        records=make_records(100, unicode=True, controls=True),
        read=endpoint.lines,
        bad=[{"url": "ftp://logs.example.org/"}, {"url": endpoint.url, "headers": ["x"]}],
    )
    assert len(endpoint.lines()) == 200  # the batch, then the retry's copy of it


def test_a_busy_endpoint_is_retried(endpoint: Endpoint) -> None:
    """429 and 5xx: retryable, nothing kept by the endpoint; then the batch goes through."""
    endpoint.answer(503)
    endpoint.answer(429)
    web = sink(endpoint.url)
    for _ in range(2):
        with pytest.raises(RetryableSinkError, match="answered"):
            web.write(make_records(3))
    web.write(make_records(3))
    assert endpoint.lines() == ["line 000000", "line 000001", "line 000002"]


def test_retry_after_is_honoured(endpoint: Endpoint) -> None:
    """429 with Retry-After: 60: until then the sink says so without sending anything."""
    endpoint.answer(429, headers={"Retry-After": "60"})
    web = sink(endpoint.url)
    with pytest.raises(RetryableSinkError):
        web.write(make_records(1))
    with pytest.raises(RetryableSinkError, match="asked to wait"):
        web.write(make_records(1))
    assert endpoint.requests == 1


def test_a_refusal_is_permanent(endpoint: Endpoint) -> None:
    """400: the endpoint will never take these records: PermanentSinkError (dead letters)."""
    endpoint.answer(400)
    with pytest.raises(PermanentSinkError, match="answered 400"):
        sink(endpoint.url).write(make_records(1))


def test_nothing_listening_is_retryable() -> None:
    """Connection refused: retryable, naming the URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(RetryableSinkError, match=f"cannot POST to http://127.0.0.1:{port}/"):
        sink(f"http://127.0.0.1:{port}/").write(make_records(1))
