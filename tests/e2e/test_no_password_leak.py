"""The broker password never appears in any output, whatever fails."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from logfan_testkit import LOGFAN, run_logfan, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]

SECRET = "Sup3rSecretPw"  # noqa: S105 - a wrong password, the one we look for


def config(tmp_path: Path, url: str, name: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "broker": {"url": url, "exchange": "lftest-leak", "connect_timeout": 2},
                "daemon": {"status_file": str(tmp_path / f"{name}.status")},
                "sinks": {"leak": {"type": "file", "path": str(tmp_path / "leak.log")}},
            }
        )
    )
    path.chmod(0o644)  # readable by others: check warns, still without the password
    return path


class TestNoPasswordInOutput:
    """Every command's whole output, with a failing login and with a failing TLS handshake."""

    def test_grep_every_output_for_the_password(
        self, rabbitmq: dict[str, Any], tmp_path: Path
    ) -> None:
        """check, check --probe, status, emit, dead and run: the password is never printed."""
        outputs: list[str] = []
        urls = {
            "login": f"amqp://guest:{SECRET}@127.0.0.1:5672//",  # wrong password: refused
            "tls": f"amqps://guest:{SECRET}@127.0.0.1:5672//",  # TLS to a plain port: fails
        }
        for name, url in urls.items():
            path = config(tmp_path, url, name)
            runs = [
                run_logfan("check", "-c", str(path)),
                run_logfan("check", "--probe", "-c", str(path)),
                run_logfan("status", "-c", str(path)),
                run_logfan("emit", "-c", str(path), "--retry-for", "1", "x"),
                run_logfan("dead", "-c", str(path), "leak"),
            ]
            for done in runs:
                outputs += [
                    done.stdout.decode(errors="replace"),
                    done.stderr.decode(errors="replace"),
                ]
            assert [d.returncode for d in runs] == [0, 1, 1, 1, 1], [d.stderr for d in runs]
            for log_format in ("json", "console"):
                err = tmp_path / f"{name}-{log_format}.err"
                with err.open("wb") as f:
                    proc = subprocess.Popen(
                        [*LOGFAN, "run", "-c", str(path), "--log-format", log_format], stderr=f
                    )
                wait_for(lambda e=err: "consumer disconnected" in e.read_text(), what="a failure")  # type: ignore[misc]
                proc.send_signal(signal.SIGTERM)
                assert proc.wait(30) == 0
                outputs.append(err.read_text(errors="replace"))
        everything = "\n".join(outputs)
        print(everything[:3000])
        assert "***" in everything, "the URL is shown, redacted"
        assert SECRET not in everything
        assert "Traceback" not in everything, "every failure is one clear sentence"
