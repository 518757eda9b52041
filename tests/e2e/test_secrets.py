"""Broker passwords from a file or the environment; never shown anywhere."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from logfan_testkit import Daemon, Setup, read_lines, run_logfan, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]


class TestBrokerPassword:
    """The password may live outside the URL."""

    def test_password_file_and_env(
        self, rabbitmq: dict[str, Any], tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        """Daemon with password_file, emitter with password_env: lines flow, password unseen."""
        setup = Setup(rabbitmq["url"], tmp_path, rabbitmq)
        sink = setup.sink("secret")
        out = tmp_path / "secret.log"
        secret = tmp_path / "broker.pass"
        secret.write_text("guest\n")
        secret.chmod(0o600)
        base = {
            "url": "amqp://guest@127.0.0.1:5672//",
            "exchange": setup.exchange,
        }
        sinks = {sink: {"type": "file", "path": str(out), "format": "{message}"}}
        daemon_cfg = tmp_path / "daemon.yaml"
        daemon_cfg.write_text(
            yaml.safe_dump({"broker": {**base, "password_file": str(secret)}, "sinks": sinks})
        )
        emit_cfg = tmp_path / "emit.yaml"
        emit_cfg.write_text(
            yaml.safe_dump({"broker": {**base, "password_env": "LF_TEST_PW"}, "sinks": sinks})
        )
        daemon = Daemon(daemon_cfg, tmp_path).start()
        daemons.append(daemon)
        env = {**os.environ, "LF_TEST_PW": "guest"}
        done = run_logfan("emit", "-c", str(emit_cfg), "via", "env", env=env)
        assert done.returncode == 0, done.stderr
        wait_for(lambda: read_lines(out) == ["via env"], what="the line")
        assert daemon.stop() == 0
        assert "guest:guest" not in daemon.logs()

        missing = run_logfan("emit", "-c", str(emit_cfg), "x")
        assert missing.returncode == 1
        assert (
            missing.stderr.decode() == "logfan emit: broker.password_env: $LF_TEST_PW is not set\n"
        )

        wrong = {**os.environ, "LF_TEST_PW": "hunter2"}
        refused = run_logfan("emit", "-c", str(emit_cfg), "--retry-for", "1", "x", env=wrong)
        assert refused.returncode == 1
        assert "hunter2" not in refused.stderr.decode()
        assert "Traceback" not in refused.stderr.decode()
