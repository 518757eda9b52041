"""`logfan status` and `logfan check --probe`: figures from the broker and the daemon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from logfan_testkit import Daemon, Setup, read_lines, run_logfan, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]


def table(text: str) -> dict[str, dict[str, str]]:
    """The status table as {sink: {column: cell}} (cells are separated by 2+ spaces)."""
    lines = [
        line for line in text.splitlines() if line and not line.startswith(("daemon:", "broker:"))
    ]
    header = lines[0].split()
    header = [*header[:-2], "LAST ERROR"] if header[-2:] == ["LAST", "ERROR"] else header
    rows = {}
    for line in lines[1:]:
        cells = [c for c in line.split("  ") if c.strip()]
        cells = [c.strip() for c in cells]
        rows[cells[0]] = dict(zip(header, cells, strict=False))
    return rows


class TestStatus:
    """The status table, with the daemon running and stopped."""

    def test_status_running_and_stopped(
        self, rabbitmq: dict[str, Any], tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """Running: delivered counts and states; stopped: the broker's queue depth, and a note."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        good, down = setup.sink("good"), setup.sink("down")
        config = setup.config(
            {
                good: {"type": "file", "path": str(tmp_path / "good.log"), "format": "{message}"},
                down: {"type": "syslog", "address": "tcp://127.0.0.1:1"},
            }
        )
        doc = yaml.safe_load(config.read_text())
        doc["daemon"] = {"status_file": str(tmp_path / "status.json")}
        config.write_text(yaml.safe_dump(doc))
        daemon = Daemon(config, tmp_path).start()
        daemons.append(daemon)
        sent = [f"s{i}" for i in range(300)]
        assert run_logfan("emit", "-c", str(config), stdin="\n".join(sent).encode()).returncode == 0
        wait_for(lambda: read_lines(tmp_path / "good.log") == sent, what="the good sink")

        def running() -> dict[str, dict[str, str]]:
            done = run_logfan("status", "-c", str(config))
            assert done.returncode == 0, done.stderr
            return table(done.stdout.decode())

        wait_for(lambda: running().get(good, {}).get("DELIVERED") == "300", what="figures")
        rows = running()
        print(run_logfan("status", "-c", str(config)).stdout.decode())
        assert rows[good]["STATE"] == "consuming"
        assert rows[good]["CONSUMERS"] == "1"
        assert rows[down]["STATE"] == "retrying"
        assert "cannot connect to tcp://127.0.0.1:1" in rows[down]["LAST ERROR"]
        assert daemon.stop() == 0

        stopped = run_logfan("status", "-c", str(config))
        out = stopped.stdout.decode()
        assert "daemon: not running" in out
        rows = table(out)
        assert rows[down]["QUEUED"] != "0", "the down sink's lines wait in its queue"
        assert rows[good]["QUEUED"] == "0"
        assert rows[good]["CONSUMERS"] == "0"

    def test_probe_says_exactly_what_failed(self, rabbitmq: dict[str, Any], tmp_path: Path) -> None:
        """--probe: the broker, each file path and each syslog address, OK or FAILED: why."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("")
        config = setup.config(
            {
                "ok": {"type": "file", "path": str(tmp_path / "ok.log")},
                "blocked": {"type": "file", "path": str(blocker / "x.log")},
                "remote": {"type": "syslog", "address": "tcp://127.0.0.1:1"},
            }
        )
        done = run_logfan("check", "--probe", "-c", str(config))
        out = done.stdout.decode()
        assert done.returncode == 1
        assert "broker amqp://guest:***@127.0.0.1:5672//: OK" in out
        assert "sink ok (file): OK" in out
        assert f"sink blocked (file): FAILED: sink 'blocked': cannot open {blocker}/x.log" in out
        assert "sink remote (syslog): FAILED: sink 'remote': cannot connect" in out
        bad_broker = setup.config({"ok": {"type": "file", "path": str(tmp_path / "ok.log")}})
        doc = yaml.safe_load(bad_broker.read_text())
        doc["broker"]["url"] = "amqp://guest:secret@127.0.0.1:1//"
        doc["broker"]["connect_timeout"] = 2
        bad_broker.write_text(yaml.safe_dump(doc))
        down = run_logfan("check", "--probe", "-c", str(bad_broker))
        assert down.returncode == 1
        assert "broker amqp://guest:***@127.0.0.1:1//: FAILED" in down.stdout.decode()
        assert "secret" not in down.stdout.decode() + down.stderr.decode()
