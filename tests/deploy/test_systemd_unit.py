"""deploy/: the systemd unit, the logrotate snippet and the example config, checked by the tools."""

from __future__ import annotations

import ctypes
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from logfan_testkit import read_lines, run_logfan, wait_for, write_config

pytestmark = [pytest.mark.systemd, pytest.mark.logrotate]

DEPLOY = Path(__file__).parents[2] / "deploy"
UNIT = DEPLOY / "logfan.service"
LOGROTATE = DEPLOY / "logfan.logrotate"
EXAMPLE = DEPLOY / "logfan.yaml"
#: where deploy/INSTALL.md puts the program; the tests point a copy of the unit at the venv's.
INSTALLED = "/opt/logfan/venv/bin/logfan"
VENV_LOGFAN = Path(sys.executable).parent / "logfan"


def unit_copy(tmp_path: Path, extra: str = "") -> Path:
    """The unit with its program path rewritten to this venv's `logfan`, which verify checks."""
    text = UNIT.read_text()
    assert f"ExecStart={INSTALLED} run -c /etc/logfan/logfan.yaml" in text
    assert VENV_LOGFAN.exists()
    copy = tmp_path / "logfan.service"
    copy.write_text(text.replace(INSTALLED, str(VENV_LOGFAN)) + extra)
    return copy


def directives(text: str) -> dict[str, list[str]]:
    """``Key=value`` lines of a unit file, each key with all its values in order."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


class TestSystemdUnit:
    """deploy/logfan.service as systemd-analyze sees it."""

    def test_verify_prints_nothing(self, tmp_path: Path) -> None:
        """`systemd-analyze verify --man=no` exits 0 and prints nothing at all."""
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(unit_copy(tmp_path))],
            capture_output=True,
            text=True,
            check=False,
        )
        assert (done.returncode, done.stdout + done.stderr) == (0, "")

    def test_verify_output_would_be_caught(self, tmp_path: Path) -> None:
        """An unknown key exits 0 but prints a warning: why the test above fails on any output."""
        bad = unit_copy(tmp_path, "NoSuchKey=1\n")
        done = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(bad)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0
        assert "Unknown key 'NoSuchKey'" in done.stdout + done.stderr

    def test_security_exposure_is_below_3(self, tmp_path: Path) -> None:
        """`systemd-analyze security --offline=true` rates the unit below 3.0 ("OK" or better)."""
        done = subprocess.run(
            ["systemd-analyze", "security", "--offline=true", str(unit_copy(tmp_path))],
            capture_output=True,
            text=True,
            check=False,
        )
        match = re.search(r"Overall exposure level for logfan\.service: (\d+\.\d+)", done.stdout)
        assert match, done.stdout + done.stderr
        print(f"\nsystemd-analyze security: overall exposure {match[1]}")
        assert float(match[1]) < 3.0

    def test_service_contract(self) -> None:
        """Readiness, watchdog, reload, restart, user and folders are what the README promises."""
        found = directives(UNIT.read_text())
        expected = {
            "Type": ["notify"],
            "NotifyAccess": ["main"],
            "WatchdogSec": ["30s"],
            "ExecStart": [f"{INSTALLED} run -c /etc/logfan/logfan.yaml"],
            "ExecReload": [
                f"{INSTALLED} reload -c /etc/logfan/logfan.yaml --pid $MAINPID --timeout 50"
            ],
            "Restart": ["on-failure"],
            "User": ["logfan"],
            "Group": ["logfan"],
            "LogsDirectory": ["logfan"],
            "StateDirectory": ["logfan"],
            "RuntimeDirectory": ["logfan"],
            "CapabilityBoundingSet": [""],
            "MemoryDenyWriteExecute": ["yes"],
            "LogRateLimitIntervalSec": ["30s"],
            "LogRateLimitBurst": ["10000000"],
        }
        assert {key: found.get(key) for key in expected} == expected


class TestMemoryDenyWriteExecute:
    """MemoryDenyWriteExecute=yes: the daemon runs when W+X memory is refused by the kernel."""

    WRAPPER = """
import ctypes, mmap, runpy, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
    sys.exit(f"PR_SET_MDWE failed: errno {ctypes.get_errno()}")
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    sys.exit("a writable and executable mapping was allowed: MDWE is not in effect")
except PermissionError:
    pass
sys.argv = ["logfan", *sys.argv[1:]]
runpy.run_module("logfan.daemon.cli", run_name="__main__")
"""

    def test_daemon_delivers_lines_under_mdwe(self, tmp_path: Path) -> None:
        """Under prctl(PR_SET_MDWE) (the kernel's form of the same rule) lines still arrive."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(66, 0, 0, 0, 0) < 0:  # PR_GET_MDWE
            pytest.skip("this kernel has no PR_SET_MDWE (Linux 6.3 or later has)")
        out = tmp_path / "out.log"
        config = write_config(
            tmp_path / "logfan.yaml",
            f"filesystem://{tmp_path}/spool",
            "mdwe",
            {"out": {"type": "file", "path": str(out), "format": "{message}"}},
        )
        argv = [sys.executable, "-c", self.WRAPPER, "run", "-c", str(config)]
        with (tmp_path / "daemon.err").open("wb") as err:
            daemon = subprocess.Popen(argv, stderr=err, stdout=subprocess.DEVNULL)
        try:
            sent = [f"line {i}" for i in range(200)]
            emitted = run_logfan("emit", "-c", str(config), stdin="\n".join(sent).encode())
            assert emitted.returncode == 0, emitted.stderr
            wait_for(lambda: read_lines(out) == sent or daemon.poll() is not None, what="lines")
            assert daemon.poll() is None, (tmp_path / "daemon.err").read_text()
            assert read_lines(out) == sent
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(30) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait(10)


class TestLogrotateSnippet:
    """deploy/logfan.logrotate as logrotate reads and runs it."""

    def test_logrotate_accepts_it(self, tmp_path: Path) -> None:
        """`logrotate -d` reads the snippet as shipped without an error."""
        done = subprocess.run(
            ["logrotate", "-d", "-s", str(tmp_path / "state"), str(LOGROTATE)],
            capture_output=True,
            text=True,
            check=False,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        assert "error" not in output.lower()
        assert "rotating pattern: /var/log/logfan/*.log" in output

    def test_it_renames_leaves_creation_to_logfan_and_compresses_later(
        self, tmp_path: Path
    ) -> None:
        """Run for real on a folder: rename, no new file (logfan makes it), .gz one round later,
        and the reload command run once per rotation."""
        conf = tmp_path / "logrotate.conf"
        reloads = tmp_path / "reloads"
        text = LOGROTATE.read_text()
        for old in ("/var/log/logfan/*.log", "systemctl reload logfan.service"):
            assert old in text
        text = text.replace("/var/log/logfan/*.log", f"{tmp_path}/*.log")
        reload = f"sh -c 'echo reload >> {reloads}'"  # the snippet sends its own output away
        conf.write_text(text.replace("systemctl reload logfan.service", reload))
        argv = ["logrotate", "-f", "-s", str(tmp_path / "state"), str(conf)]
        (tmp_path / "a.log").write_text("first\n")
        (tmp_path / "b.log").write_text("other\n")
        assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
        assert not (tmp_path / "a.log").exists()
        assert (tmp_path / "a.log.1").read_text() == "first\n"
        (tmp_path / "a.log").write_text("second\n")
        assert subprocess.run(argv, capture_output=True, check=False).returncode == 0
        assert (tmp_path / "a.log.1").read_text() == "second\n"
        assert (tmp_path / "a.log.2.gz").exists()
        assert reloads.read_text() == "reload\nreload\n"  # sharedscripts: once per run


class TestExampleConfig:
    """deploy/logfan.yaml, the example /etc/logfan/logfan.yaml."""

    def test_logfan_check_accepts_it(self) -> None:
        """`logfan check` validates it: broker, three sinks, every option."""
        done = run_logfan("check", "-c", str(EXAMPLE))
        assert done.returncode == 0, done.stderr
        assert "OK: 3 sink(s): all (file), audit (file), syslog (syslog)" in done.stdout.decode()

    def test_its_paths_are_the_ones_the_unit_may_write(self) -> None:
        """File sinks under /var/log/logfan (LogsDirectory), status under /run/logfan."""
        config = yaml.safe_load(EXAMPLE.read_text())
        paths = [s["path"] for s in config["sinks"].values() if s["type"] == "file"]
        assert paths
        assert all(p.startswith("/var/log/logfan/") and p.endswith(".log") for p in paths)
        assert config["daemon"]["status_file"].startswith("/run/logfan/")
        assert config["broker"]["url"].startswith("amqp://")
