"""Shared fixtures: real RabbitMQ, real daemons as subprocesses, real sockets; no mocks."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from logfan_testkit import RABBITMQ_URL, Daemon, Setup, UdpListener, rabbitmq_up

# `make test` runs each property test with hypothesis' default 100 examples; a longer run:
# HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/unit
settings.register_profile("long", max_examples=5_000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


#: the markers that name a real resource; see pyproject.toml.
TIERS = frozenset(
    {
        "rabbitmq",
        "rabbitmq_node",
        "processes",
        "syslog_ng",
        "systemd",
        "logrotate",
        "bench",
        "prometheus",
    }
)
FAST_TIER = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The fast tier (tests/unit) needs no real resource; every other test names the ones it
    needs (the markers registered in pyproject.toml), so `pytest -m` can select a tier."""
    tiers = {str(line).split(":")[0] for line in config.getini("markers")}
    wrong = []
    for item in items:
        if not item.path.is_relative_to(FAST_TIER.parent):
            continue  # the example plugin's own tests (examples/) follow their own layout
        marked = {m.name for m in item.iter_markers()} & tiers
        fast = item.path.is_relative_to(FAST_TIER)
        if fast == bool(marked):
            wrong.append(f"{item.nodeid}: {'has' if fast else 'lacks'} a tier marker")
    if wrong:
        raise pytest.UsageError("\n".join(["tests in the wrong tier:", *wrong]))


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; any still running at the end are killed."""
    started: list[Daemon] = []
    yield started
    for d in started:
        if d.proc is not None and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait(10)


@pytest.fixture
def rabbitmq() -> Iterator[dict[str, Any]]:
    """The shared RabbitMQ (must be running: `make test` starts it); queues made are deleted."""
    if not rabbitmq_up():
        pytest.fail("RabbitMQ is not running on 127.0.0.1:5672 (run `make test`, which starts it)")
    made: dict[str, Any] = {"url": RABBITMQ_URL, "queues": [], "exchanges": []}
    yield made
    from kombu import Connection

    with Connection(RABBITMQ_URL) as conn:
        # Cleanup of queues and exchanges a failed test may never have made: errors are moot.
        for name in made["queues"]:
            with contextlib.suppress(Exception):
                conn.channel().queue_delete(name)
        for name in made["exchanges"]:
            with contextlib.suppress(Exception):
                conn.channel().exchange_delete(name)


@pytest.fixture
def udp_listener() -> Iterator[UdpListener]:
    """A UDP syslog receiver for the test."""
    listener = UdpListener()
    yield listener
    listener.close()


@pytest.fixture(params=["rabbitmq", "embedded"])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    """The same test on both brokers."""
    if request.param == "rabbitmq":
        rabbitmq = request.getfixturevalue("rabbitmq")
        yield Setup(rabbitmq["url"], tmp_path, rabbitmq)
    else:
        yield Setup(f"filesystem://{tmp_path}/spool", tmp_path, None)
