"""sd_notify with a real NOTIFY_SOCKET: READY, STATUS, WATCHDOG gated on progress, reload, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from logfan_testkit import LOGFAN, read_lines, run_logfan, suffix, wait_for, write_config

pytestmark = [pytest.mark.processes]


class NotifySocket:
    """A real AF_UNIX datagram socket collecting what the daemon sends, in order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.messages: list[list[str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            self.messages.append(data.decode().split("\n"))

    def fields(self) -> list[str]:
        """Every field received, e.g. ``READY=1``, ``STATUS=...``, in order."""
        return [field for message in list(self.messages) for field in message]

    def kinds(self) -> list[str]:
        """The key of each field, in order."""
        return [field.split("=", 1)[0] for field in self.fields()]

    def count(self, key: str) -> int:
        return self.kinds().count(key)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[NotifySocket]:
    """The test's NOTIFY_SOCKET."""
    ns = NotifySocket(tmp_path / "notify.sock")
    yield ns
    ns.close()


class TestSdNotify:
    """The daemon speaks sd_notify as a Type=notify service with WatchdogSec."""

    def test_ready_status_watchdog_wedge_reload_stop(
        self, tmp_path: Path, notify_socket: NotifySocket
    ) -> None:
        """READY, STATUS, WATCHDOG in order; no pings while a sink is wedged; reload; stop."""
        hang = tmp_path / "hang"
        name = f"wedge-{suffix()}"
        config = write_config(
            tmp_path / "c.yaml",
            f"filesystem://{tmp_path}/spool",
            "logs",
            {
                name: {"type": "picky", "path": str(tmp_path / "w.log"), "hang_file": str(hang)},
                "plain": {"type": "file", "path": str(tmp_path / "p.log"), "format": "{message}"},
            },
        )
        env = {**os.environ, "NOTIFY_SOCKET": str(notify_socket.path), "WATCHDOG_USEC": "2000000"}
        with (tmp_path / "daemon.err").open("wb") as err:
            proc = subprocess.Popen(
                [*LOGFAN, "run", "-c", str(config), "--log-format", "json"], env=env, stderr=err
            )
        try:
            wait_for(lambda: notify_socket.count("WATCHDOG") >= 2, what="watchdog pings")
            kinds = notify_socket.kinds()
            assert kinds.index("READY") < kinds.index("STATUS") < kinds.index("WATCHDOG"), kinds
            ready_status = notify_socket.fields()[kinds.index("READY") + 1]
            assert ready_status.startswith("STATUS=")
            assert f"{name} consuming" in ready_status

            # Wedge one sink: its thread blocks inside write(); pings must stop.
            hang.write_text("")
            assert run_logfan("emit", "-c", str(config), "stuck").returncode == 0
            wait_for(lambda: read_lines(tmp_path / "p.log") == ["stuck"], what="the other sink")
            log = tmp_path / "daemon.err"
            wait_for(lambda: "consumer wedged; no watchdog ping" in log.read_text(), what="wedge")
            pings = notify_socket.count("WATCHDOG")
            statuses = notify_socket.count("STATUS")
            wait_for(lambda: notify_socket.count("STATUS") >= statuses + 3, what="3 more STATUS")
            assert notify_socket.count("WATCHDOG") == pings, "no ping while a sink is wedged"
            last_status = [f for f in notify_socket.fields() if f.startswith("STATUS=")][-1]
            assert f"{name} wedged " in last_status, last_status
            assert "(no progress since " in last_status
            assert log.read_text().count("consumer wedged") == 1, "logged once per episode"

            hang.unlink()
            wait_for(lambda: notify_socket.count("WATCHDOG") > pings, what="pings to resume")
            assert "consumer no longer wedged" in log.read_text()

            before = len(notify_socket.fields())
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "READY" in notify_socket.kinds()[before:], what="READY after reload")
            after = notify_socket.kinds()[before:]
            assert after.index("RELOADING") < after.index("READY"), after

            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
            wait_for(lambda: "STOPPING" in notify_socket.kinds(), what="STOPPING")
            assert notify_socket.kinds()[-1] == "STOPPING"
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()

    def test_no_notify_socket_no_problem(self, tmp_path: Path) -> None:
        """Outside systemd the daemon runs and stops as usual."""
        config = write_config(
            tmp_path / "c.yaml",
            f"filesystem://{tmp_path}/spool",
            "logs",
            {"plain": {"type": "file", "path": str(tmp_path / "p.log"), "format": "{message}"}},
        )
        env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "WATCHDOG_USEC")}
        proc = subprocess.Popen(
            [*LOGFAN, "run", "-c", str(config)], env=env, stderr=subprocess.DEVNULL
        )
        try:
            assert run_logfan("emit", "-c", str(config), "hello").returncode == 0
            wait_for(lambda: read_lines(tmp_path / "p.log") == ["hello"], what="the line")
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


class TestNotifySocketGone:
    """A notification socket that disappears never takes the daemon down (sd_notify ignores it)."""

    def test_daemon_survives_a_missing_notify_socket(self, tmp_path: Path) -> None:
        """NOTIFY_SOCKET names a path nobody listens on: lines still flow, stop is clean."""
        config = write_config(
            tmp_path / "c.yaml",
            f"filesystem://{tmp_path}/spool",
            "logs",
            {"plain": {"type": "file", "path": str(tmp_path / "p.log"), "format": "{message}"}},
        )
        env = {
            **os.environ,
            "NOTIFY_SOCKET": str(tmp_path / "gone.sock"),
            "WATCHDOG_USEC": "2000000",
        }
        proc = subprocess.Popen(
            [*LOGFAN, "run", "-c", str(config)], env=env, stderr=subprocess.DEVNULL
        )
        try:
            assert run_logfan("emit", "-c", str(config), "still here").returncode == 0
            wait_for(lambda: read_lines(tmp_path / "p.log") == ["still here"], what="the line")
            assert proc.poll() is None
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
