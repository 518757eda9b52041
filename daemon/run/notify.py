"""sd_notify: READY, STATUS, WATCHDOG, RELOADING, STOPPING to systemd (or any NOTIFY_SOCKET).

systemd-python's ``systemd.daemon.notify`` is used when it is installed; otherwise the datagram
is sent directly, which is all sd_notify does. Without ``NOTIFY_SOCKET`` every call is a no-op,
so the daemon runs the same outside systemd.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable


def _systemd_notify() -> Callable[[str], object] | None:
    try:
        from systemd import daemon  # noqa: PLC0415 - an optional extra
    except ImportError:
        return None
    notify: Callable[[str], object] = daemon.notify
    return notify


class Notifier:
    """Sends notifications to ``$NOTIFY_SOCKET``; knows the watchdog interval, if any."""

    def __init__(self) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET") or None
        self._sock: socket.socket | None = None
        self._native = _systemd_notify() if self.address else None
        usec = os.environ.get("WATCHDOG_USEC", "")
        owner = os.environ.get("WATCHDOG_PID", "")
        mine = not owner or owner == str(os.getpid())
        #: seconds between pings (half of WatchdogSec), or None when no watchdog is asked for.
        self.watchdog_interval: float | None = (
            int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and mine else None
        )

    @property
    def enabled(self) -> bool:
        """True when a notification socket was given."""
        return self.address is not None

    def send(self, *fields: str) -> None:
        """Send ``KEY=VALUE`` fields in one datagram; errors are ignored, like sd_notify's."""
        if self.address is None:
            return
        message = "\n".join(fields)
        if self._native is not None:
            # systemd-python raises when the socket is gone; sd_notify itself would not.
            with contextlib.suppress(OSError):
                self._native(message)
            return
        target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(message.encode("utf-8", "replace"), target)
        except OSError:
            pass  # systemd may be gone (shutdown); a notification is best effort

    def ready(self, status: str) -> None:
        """READY=1 with the current status."""
        self.send("READY=1", f"STATUS={status}")

    def status(self, status: str) -> None:
        """A new STATUS= line."""
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        """WATCHDOG=1: the service is alive and making progress."""
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        """RELOADING=1 (with MONOTONIC_USEC, which newer systemd requires)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self.send("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def stopping(self) -> None:
        """STOPPING=1."""
        self.send("STOPPING=1")
