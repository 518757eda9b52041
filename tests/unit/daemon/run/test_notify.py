"""sd_notify: what reaches a real NOTIFY_SOCKET datagram socket, and the watchdog interval."""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from logfan.daemon.run import notify
from logfan.daemon.run.notify import Notifier

SYSTEMD_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No systemd variables but those a test sets (the tests may run under systemd)."""
    for name in SYSTEMD_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["as-installed", "plain-datagram"])
def sender(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each test with systemd-python's notify if installed, and with logfan's own datagram."""
    if request.param == "plain-datagram":
        monkeypatch.setattr(notify, "_systemd_notify", lambda: None)
    return str(request.param)


@pytest.fixture
def new_notifier() -> Iterator[Callable[[], Notifier]]:
    """Makes Notifiers (reading the environment as it is then); closes their sockets after."""
    made: list[Notifier] = []

    def make() -> Notifier:
        made.append(Notifier())
        return made[-1]

    yield make
    for notifier in made:
        if notifier._sock is not None:  # the plain datagram's socket lives as long as the daemon
            notifier._sock.close()


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket bound in tmp_path and named by NOTIFY_SOCKET, as systemd's is."""
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    """The fields of the next datagram."""
    return sock.recv(4096).decode().split("\n")


@pytest.mark.usefixtures("sender")
class TestNotifier:
    """``Notifier``: one datagram per notification, nothing without NOTIFY_SOCKET."""

    def test_ready_with_status_in_one_datagram(
        self, new_notifier: Callable[[], Notifier], receiver: socket.socket
    ) -> None:
        """READY=1 and the STATUS= line travel together."""
        notifier = new_notifier()
        assert notifier.enabled
        notifier.ready("2 sinks consuming")
        assert received(receiver) == ["READY=1", "STATUS=2 sinks consuming"]

    def test_status_watchdog_stopping(
        self, new_notifier: Callable[[], Notifier], receiver: socket.socket
    ) -> None:
        """STATUS=, WATCHDOG=1 and STOPPING=1, each its own datagram, in order."""
        notifier = new_notifier()
        notifier.status("all consuming 5 delivered 0 queued")
        notifier.watchdog()
        notifier.stopping()
        assert received(receiver) == ["STATUS=all consuming 5 delivered 0 queued"]
        assert received(receiver) == ["WATCHDOG=1"]
        assert received(receiver) == ["STOPPING=1"]

    def test_reloading_with_monotonic_usec(
        self, new_notifier: Callable[[], Notifier], receiver: socket.socket
    ) -> None:
        """RELOADING=1 carries MONOTONIC_USEC, the CLOCK_MONOTONIC time it was sent at."""
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        new_notifier().reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        reloading, monotonic = received(receiver)
        assert reloading == "RELOADING=1"
        key, _, value = monotonic.partition("=")
        assert key == "MONOTONIC_USEC"
        assert before <= int(value) <= after

    def test_abstract_socket(
        self, new_notifier: Callable[[], Notifier], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """``@name`` in NOTIFY_SOCKET is the abstract socket ``\\0name``."""
        name = f"logfan-test-{uuid.uuid4().hex}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind("\0" + name)
            sock.settimeout(10)
            monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
            new_notifier().ready("up")
            assert received(sock) == ["READY=1", "STATUS=up"]

    def test_without_notify_socket_nothing_is_sent(
        self, new_notifier: Callable[[], Notifier], tmp_path: Path
    ) -> None:
        """No NOTIFY_SOCKET: disabled, every call a silent no-op."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.bind(str(tmp_path / "notify.sock"))
            sock.setblocking(False)
            notifier = new_notifier()
            assert not notifier.enabled
            notifier.ready("up")
            notifier.status("s")
            notifier.watchdog()
            notifier.reloading()
            notifier.stopping()
            with pytest.raises(BlockingIOError):
                sock.recv(4096)

    def test_socket_gone_is_no_error(
        self,
        new_notifier: Callable[[], Notifier],
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A NOTIFY_SOCKET nobody listens on (systemd shutting down) raises nothing."""
        monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "gone.sock"))
        notifier = new_notifier()
        notifier.ready("up")
        notifier.stopping()


class TestWatchdogInterval:
    """``Notifier.watchdog_interval``: half of WatchdogSec, for this process only."""

    def test_half_of_watchdog_usec_in_seconds(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WATCHDOG_USEC=30000000 (30 s): a ping every 15 s."""
        monkeypatch.setenv("WATCHDOG_USEC", "30000000")
        assert Notifier().watchdog_interval == 15.0

    def test_for_this_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WATCHDOG_PID naming this process keeps the interval."""
        monkeypatch.setenv("WATCHDOG_USEC", "3000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))
        assert Notifier().watchdog_interval == 1.5

    def test_for_another_process(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """WATCHDOG_PID naming another process: no watchdog here."""
        monkeypatch.setenv("WATCHDOG_USEC", "3000000")
        monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
        assert Notifier().watchdog_interval is None

    @pytest.mark.parametrize("usec", ["", "0", "-1000000", "abc", "1.5", "1e6"])
    def test_not_a_positive_number(self, monkeypatch: pytest.MonkeyPatch, usec: str) -> None:
        """A value that is not a positive whole number of microseconds: no watchdog."""
        monkeypatch.setenv("WATCHDOG_USEC", usec)
        assert Notifier().watchdog_interval is None

    def test_not_set(self) -> None:
        """No WATCHDOG_USEC: no watchdog."""
        assert Notifier().watchdog_interval is None
