"""logfan as a service of a real systemd 252, installed by running deploy/INSTALL.md's own steps.

One systemd boots for the whole module (tests/sdhost.py: new namespaces on an overlay of /, so
nothing of the install reaches the host), on the embedded broker as INSTALL.md describes it, with
a journald sink added to the shipped config. Each test names its lines with a tag of its own.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from logfan_testkit import REPO, TcpSyslogListener, wait_for
from sdhost import SystemdHost, install_steps

pytestmark = [pytest.mark.systemd, pytest.mark.logrotate, pytest.mark.processes]

LOGFAN = "/opt/logfan/venv/bin/logfan"
CONFIG = "/etc/logfan/logfan.yaml"
AS_LOGFAN = f"runuser -u logfan -- {LOGFAN}"
FILES = "/var/log/logfan/all.log*"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SystemdHost]:
    """systemd booted, logfan installed per INSTALL.md (embedded broker) and enabled."""
    box = SystemdHost(tmp_path_factory.mktemp("systemd") / "host").boot()
    try:
        steps = install_steps(REPO / "deploy" / "INSTALL.md", skip=("3.", "5."))
        for command in steps:
            box.sh(f"cd {REPO} && {command}", timeout=300)
        # "The embedded broker instead of RabbitMQ": the url, and no password_file.
        box.sh(
            f"sed -i 's|^  url: .*|  url: filesystem:///var/lib/logfan/spool|; "
            f"/^  password_file:/d' {CONFIG} && printf '  journal:\\n    type: journald\\n' "
            f">> {CONFIG}"
        )
        for command in install_steps(REPO / "deploy" / "INSTALL.md"):
            if command.startswith(("install -m 0644 deploy/logfan.", "systemctl")):
                box.sh(f"cd {REPO} && {command}", timeout=120)
        yield box
    finally:
        box.poweroff()


def emit(host: SystemdHost, tag: str, lines: list[str], *, user: str = "logfan") -> None:
    """``logfan emit -t TAG`` as ``user``, the lines on its stdin; it must exit 0."""
    host.sh(
        f"runuser -u {user} -- {LOGFAN} emit -c {CONFIG} -t {tag}",
        stdin=("\n".join(lines) + "\n").encode(),
        timeout=300,
    )


def messages(host: SystemdHost, tag: str, files: str = FILES) -> list[str]:
    """The messages of ``tag`` in the file sink's files (rotated and gzipped ones too)."""
    out = host.sh(f"zcat -f {files} 2>/dev/null | grep -a ' {tag}\\[' || true").stdout
    return [line.split(": ", 1)[1] for line in out.splitlines() if ": " in line]


def status_text(host: SystemdHost) -> str:
    """The unit's STATUS= text, as systemd has it."""
    return host.sh("systemctl show -p StatusText --value logfan").stdout.strip()


def main_pid(host: SystemdHost) -> int:
    return int(host.sh("systemctl show -p MainPID --value logfan").stdout)


def numbered(tag: str, count: int) -> list[str]:
    return [f"{tag} line {i:06d}" for i in range(count)]


def test_enabled_and_running_with_status_per_sink(host: SystemdHost) -> None:
    """`enable --now` (Type=notify): active (running), STATUS= names every sink; the daemon's
    own journal entries say the event in words and name the code that logged them."""
    assert host.sh("systemctl is-active logfan").stdout.strip() == "active"
    status = status_text(host)
    for sink in ("all", "audit", "syslog", "journal"):
        assert re.search(rf"\b{sink} consuming \d+ delivered", status), status
    ready = host.sh("journalctl -u logfan -t logfan -o export LOGFAN_EVENT='logfan ready'").stdout
    assert "\nMESSAGE=logfan ready status=" in ready, ready
    assert re.search(r"\nCODE_FILE=\S+/logfan/daemon/run/supervisor\.py\n", ready), ready


def test_security_exposure(host: SystemdHost) -> None:
    """`systemd-analyze security logfan.service`, online: 1.5 or better."""
    out = host.sh("systemd-analyze security --no-pager logfan.service").stdout
    match = re.search(r"Overall exposure level for logfan\.service: (\d+\.\d+)", out)
    assert match, out
    print(f"\nsystemd-analyze security (online): {match[1]}")
    assert float(match[1]) <= 1.5


def test_burst_into_journald_loses_nothing(host: SystemdHost) -> None:
    """100,000 lines: the journald sink and the syslog sink on /dev/log each leave 100,000
    entries under the line's own tag and pid; journald suppresses nothing of logfan.service."""
    sent = numbered("burst", 100_000)
    emit(host, "burst", sent)
    host.wait(
        "test $(journalctl -t burst -o cat | wc -l) -ge 200000",
        timeout=120,
        what="200,000 journal entries",
    )
    entries = host.sh("journalctl -t burst -o export | grep -a -c '^SYSLOG_PID='").stdout
    assert int(entries) == 200_000, "every entry has the emitter's pid"
    pids = host.sh("journalctl -t burst -o export | grep -a '^SYSLOG_PID=' | sort -u").stdout
    assert len(pids.split()) == 1, f"one emitter, one pid: {pids.split()[:5]}"
    for field in ("LOGFAN_SINK=journal", "SYSLOG_FACILITY=16"):  # journald sink; local0 syslog
        count = host.sh(f"journalctl -t burst -o export | grep -a -c '^{field}$'").stdout
        assert int(count) == 100_000, field
    journal = host.sh("journalctl --no-pager -o cat").stdout
    assert "Suppressed" not in journal
    assert sorted(messages(host, "burst")) == sent


def test_kill_9_mid_stream_restarts_and_loses_nothing(host: SystemdHost) -> None:
    """kill -9 of the main process while lines stream in: systemd restarts the service and
    every line reaches the file sink."""
    before = main_pid(host)
    sent = numbered("kill9", 20_000)
    chunks = [sent[i : i + 1000] for i in range(0, len(sent), 1000)]
    for n, chunk in enumerate(chunks):
        emit(host, "kill9", chunk)
        if n == 5:
            host.sh(f"kill -9 {before}")
    host.wait(
        f"test $(systemctl show -p MainPID --value logfan) -ne {before} && "
        "systemctl is-active logfan",
        what="a new main process",
    )
    wait_for(lambda: set(messages(host, "kill9")) >= set(sent), timeout=120, what="every line")


def test_wedged_worker_shows_in_status_and_the_watchdog_restarts(host: SystemdHost) -> None:
    """SIGSTOP of one worker: STATUS= says wedged; the watchdog restarts the service (a
    drop-in shortens WatchdogSec to 6 s for the test); no line is lost."""
    host.sh(
        "mkdir -p /etc/systemd/system/logfan.service.d && printf '[Service]\\nWatchdogSec=6s\\n'"
        " > /etc/systemd/system/logfan.service.d/watchdog.conf && systemctl daemon-reload && "
        "systemctl restart logfan"
    )
    try:
        before = main_pid(host)
        host.sh(f"kill -STOP $(pgrep -P {before} -f . | head -1)")
        sent = numbered("wedge", 3000)
        emit(host, "wedge", sent)
        host.wait(
            "systemctl show -p StatusText --value logfan | grep -q ' wedged '",
            what="STATUS= to say wedged",
        )
        host.wait(
            f"test $(systemctl show -p MainPID --value logfan) -ne {before}",
            what="the watchdog to restart the service",
        )
        log = host.sh(f"journalctl -u logfan _PID={before} -o cat").stdout
        assert log.count("consumer wedged") == 1, "said once per episode"
        wait_for(lambda: set(messages(host, "wedge")) >= set(sent), timeout=120, what="lines")
    finally:
        host.sh(
            "rm -r /etc/systemd/system/logfan.service.d && systemctl daemon-reload && "
            "systemctl restart logfan"
        )


def test_tcp_receiver_that_never_reads(host: SystemdHost) -> None:
    """A TCP syslog receiver that accepts and never reads: the sink is not delivering and its
    lines stay queued, none counted; once it reads, every line arrives."""
    listener = TcpSyslogListener(reading=False, rcvbuf=1024)
    host.sh(f"cp {CONFIG} /root/logfan.yaml.saved")
    try:
        host.sh(
            f"printf '  remote:\\n    type: syslog\\n    address: tcp://127.0.0.1:{listener.port}"
            f"\\n' >> {CONFIG} && systemctl reload logfan"
        )
        sent = numbered("tcp", 5000)
        emit(host, "tcp", sent)
        out = host.wait(
            f"{AS_LOGFAN} status -c {CONFIG} | grep '^remote .* did not take'",
            timeout=90,
            what="the remote sink to say its receiver does not read",
        )
        row = out.split()
        assert row[2] == "retrying"
        assert row[7] == "0", "nothing counted as delivered"
        assert int(row[4]) + int(row[5]) > 0, "its lines are queued or held"
        listener.read()
        wait_for(lambda: set(listener.messages()) >= set(sent), timeout=120, what="every line")
    finally:
        host.sh(f"cp /root/logfan.yaml.saved {CONFIG} && systemctl reload logfan")
        listener.close()


def test_reload_tells_the_truth(host: SystemdHost) -> None:
    """A refused config: `systemctl reload` fails with the reason, the old config runs on. A
    good one: it returns once the files are reopened (a renamed file is there again)."""
    host.sh(f"cp {CONFIG} /root/logfan.yaml.good && sed -i 's/mode: 0600/mode: rw/' {CONFIG}")
    refused = host.sh("systemctl reload logfan", check=False)
    assert refused.returncode != 0
    shown = host.sh("systemctl status --no-pager -n 20 logfan", check=False).stdout
    assert "reload refused; the running config stays" in shown
    assert "sinks.audit.mode: expected an octal file mode like 0640, got 'rw'" in shown
    assert host.sh("systemctl is-active logfan").stdout.strip() == "active"
    host.sh(f"cp /root/logfan.yaml.good {CONFIG}")
    host.sh("mv /var/log/logfan/audit.log /var/log/logfan/audit.log.old")
    host.sh("systemctl reload logfan")
    host.sh("test -f /var/log/logfan/audit.log")


def test_logrotate_twice_under_load(host: SystemdHost) -> None:
    """The shipped logrotate snippet, forced twice while lines stream in: every line once in
    the files, and `tail -F` printed every line."""
    host.sh("rm -f /var/log/logfan/all.log.* && systemctl reload logfan")
    host.sh("(tail -n 0 -F /var/log/logfan/all.log > /tmp/tail.out 2>/dev/null &)")
    emit(host, "rotmark", ["tail is watching"])
    host.wait("grep -q 'tail is watching' /tmp/tail.out", what="tail -F to follow the file")
    sent = numbered("rot", 30_000)
    chunks = [sent[i : i + 1000] for i in range(0, len(sent), 1000)]
    for n, chunk in enumerate(chunks):
        emit(host, "rot", chunk)
        if n in (10, 20):
            host.sh("logrotate -f /etc/logrotate.d/logfan")
            time.sleep(0.5)
    wait_for(lambda: len(messages(host, "rot")) >= len(sent), timeout=120, what="the files")
    host.sh("pkill -x tail || true")
    assert sorted(messages(host, "rot")) == sent, "every line once in the files"
    assert host.sh("ls /var/log/logfan/").stdout.count("all.log") >= 3, "it did rotate"
    printed = messages(host, "rot", "/tmp/tail.out")
    assert set(printed) == set(sent), "tail -F printed every line"


def test_stop_with_a_backlog_then_start(host: SystemdHost) -> None:
    """`systemctl stop` while a backlog drains: Result=success; after a start, every line."""
    sent = numbered("backlog", 100_000)
    emit(host, "backlog", sent)
    stopped = main_pid(host)
    host.sh("systemctl stop logfan")
    assert host.sh("systemctl show -p Result --value logfan").stdout.strip() == "success"
    own = host.sh(f"journalctl -u logfan _PID={stopped} -o cat").stdout
    assert "logfan stopping" in own, "the daemon's own log is complete"
    assert re.search(r"logfan stopped delivered=\{.*\}$", own, re.MULTILINE), own[-500:]
    host.sh("systemctl start logfan")
    wait_for(lambda: set(messages(host, "backlog")) >= set(sent), timeout=180, what="lines")


def test_a_group_member_and_a_second_daemon_on_the_spool(host: SystemdHost) -> None:
    """A member of group logfan emitting on the embedded broker: one sentence within 2 s; a
    second `logfan run` on the spool is refused, naming the running one."""
    host.sh("id alice >/dev/null 2>&1 || useradd --no-create-home -G logfan alice")
    started = time.monotonic()
    done = host.sh(f"runuser -u alice -- {LOGFAN} emit -c {CONFIG} hello", check=False)
    assert time.monotonic() - started < 2
    assert done.returncode == 1
    assert done.stderr == (
        "logfan emit: cannot use the embedded broker's spool /var/lib/logfan/spool: no write "
        "access to /var/lib/logfan/spool; run this as the user that owns it (e.g. sudo -u "
        "logfan logfan ...)\n"
    )
    second = host.sh(f"{AS_LOGFAN} run -c {CONFIG}", check=False, timeout=30)
    assert second.returncode == 1
    assert second.stderr == (
        f"logfan run: another logfan run (pid {main_pid(host)}) is using the spool "
        "/var/lib/logfan/spool\n"
    )


def test_host_untouched(host: SystemdHost) -> None:
    """Everything the install made is inside the namespace: the host has no logfan user, no
    /opt/logfan and no /etc/logfan."""
    assert host.sh("id logfan").returncode == 0
    assert not Path("/opt/logfan").exists()
    assert not Path("/etc/logfan").exists()
    with open("/etc/passwd", encoding="utf-8") as passwd:
        assert not any(line.startswith("logfan:") for line in passwd)
