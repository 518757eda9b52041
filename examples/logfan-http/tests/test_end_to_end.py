"""The HTTP sink installed as a plugin, through `logfan run` on the embedded broker."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from httpkit import Endpoint

pytestmark = [pytest.mark.processes]

LOGFAN = [sys.executable, "-m", "logfan.daemon.cli"]


def wait_for(predicate: Callable[[], bool], timeout: float = 60, what: str = "it") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def test_every_line_once_after_a_503_burst_and_a_restart(tmp_path: Path) -> None:
    """2,000 lines: the endpoint answers 503 to the first three batches, then is stopped and
    started again mid-stream; in the end it accepted every line exactly once."""
    endpoint = Endpoint()
    endpoint.answer(503, times=3)
    config = tmp_path / "logfan.yaml"
    config.write_text(
        f"broker: {{url: 'filesystem://{tmp_path}/spool'}}\n"
        f"daemon: {{status_file: '{tmp_path}/status.json'}}\n"
        f"sinks:\n  web:\n    type: http\n    url: {endpoint.url}\n"
    )
    assert subprocess.run([*LOGFAN, "check", "-c", str(config)], check=False).returncode == 0
    with (tmp_path / "daemon.log").open("wb") as log:
        daemon = subprocess.Popen([*LOGFAN, "run", "-c", str(config)], stderr=log)
    try:
        sent = [f"web line {i:05d}" for i in range(2000)]
        first = subprocess.run(
            [*LOGFAN, "emit", "-c", str(config), "-t", "web"],
            input="\n".join(sent[:1000]).encode(),
            check=False,
        )
        assert first.returncode == 0
        wait_for(lambda: len(endpoint.lines()) >= 500, what="the first lines past the 503s")
        endpoint.stop()
        more = subprocess.run(
            [*LOGFAN, "emit", "-c", str(config), "-t", "web"],
            input="\n".join(sent[1000:]).encode(),
            check=False,
        )
        assert more.returncode == 0
        time.sleep(1)
        endpoint.start()
        wait_for(lambda: len(endpoint.lines()) >= len(sent), timeout=120, what="every line")
        time.sleep(0.5)
        assert sorted(endpoint.lines()) == sent, "every line once"
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
        endpoint.stop()
