"""Fixtures of the syslog sink's tests: sinks closed after the test, real receiving sockets."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from logfan.sinks.base import Options
from logfan.sinks.syslog import SyslogSink


@pytest.fixture
def make_sink() -> Iterator[Any]:
    """Builds sinks named 'remote' and closes them after the test."""
    made: list[SyslogSink] = []

    def make(**options: Any) -> SyslogSink:
        sink = SyslogSink("remote", Options("remote", options))
        made.append(sink)
        return sink

    yield make
    for sink in made:
        sink.close()


@pytest.fixture
def udp_receiver() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(5)  # a hang guard only: datagrams on loopback arrive at once
        yield sock


@pytest.fixture
def udp_address(udp_receiver: socket.socket) -> str:
    return f"udp://127.0.0.1:{udp_receiver.getsockname()[1]}"


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    with socket.create_server(("127.0.0.1", 0)) as server:
        server.settimeout(5)
        yield server


@pytest.fixture
def tcp_address(tcp_listener: socket.socket) -> str:
    return f"tcp://127.0.0.1:{tcp_listener.getsockname()[1]}"


@pytest.fixture
def eastern_time() -> Iterator[None]:
    """Local time is UTC-5 (POSIX TZ ``EST5``, which needs no time zone database)."""
    saved = os.environ.get("TZ")
    os.environ["TZ"] = "EST5"
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()
