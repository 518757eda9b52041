"""A real systemd 252, booted as PID 1 of new namespaces on an overlay of this machine's root.

Every write it makes (users, /opt, /etc, /dev/log, /var/log) lands in a tmpfs of its own mount
namespace and is gone when it powers off: the host is left as it was. /var/log, /tmp, /run and
/dev are tmpfs of their own; the rest is an overlay of the host's root. Its network is the host's,
so a receiver a test runs on 127.0.0.1 is reachable from units inside. The recipe, and why the
private mounts matter, are in ../shared/FIELD-NOTES.md ("A real systemd in namespaces").
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import time
from pathlib import Path

#: the checkout the tests run from, which the booted system sees at the same path
CHECKOUT = Path(__file__).resolve().parents[1]
#: the shell script run as PID 1 of the new namespaces before it becomes systemd.
BOOT = r"""
set -e
mount --make-rprivate /
base=$1
mount -t tmpfs -o mode=0755 tmpfs "$base"
mkdir -p "$base/upper" "$base/work" "$base/root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$base/upper,workdir=$base/work" "$base/root"
R="$base/root"
# a checkout under a folder made a tmpfs below (/tmp/clean-check) stays visible, through the overlay
repo=$2
keep=
case "$repo" in /tmp/*|/var/tmp/*|/run/*)
  keep="$base/keep"; mkdir -p "$keep"; mount --bind "$R$repo" "$keep";;
esac
mount -t proc proc "$R/proc"
mount --rbind /sys "$R/sys"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for d in null zero full random urandom tty; do
  touch "$R/dev/$d"; mount --bind "/dev/$d" "$R/dev/$d"
done
mkdir -p "$R/dev/pts" "$R/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 tmpfs "$R/dev/shm"
for d in /tmp /var/tmp /run; do
  mkdir -p "$R$d"; mount -t tmpfs -o mode=1777 tmpfs "$R$d"
done
if [ -n "$keep" ]; then mkdir -p "$R$repo"; mount --move "$keep" "$R$repo"; fi
# /var/log on a tmpfs of its own: overlayfs does not pass a rename in a folder on to inotify,
# so `tail -F` there would never see logrotate's rename (a real /var/log does)
mount -t tmpfs -o mode=0755 tmpfs "$R/var/log"
mkdir -p "$R/var/log/journal"
mount -t tmpfs -o mode=755 tmpfs "$R/etc/systemd/system"
mkdir -p "$R/run/systemd" && echo other > "$R/run/systemd/container"
mkdir -p "$R/oldroot"
cd "$R"
pivot_root . oldroot
umount -l /oldroot
export container=other
exec /lib/systemd/systemd --system --unit=multi-user.target
"""


class SystemdHost:
    """One booted systemd; ``sh`` runs a command inside it (as root, in its namespaces)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.pid: int | None = None
        self._unshare: subprocess.Popen[bytes] | None = None

    def boot(self, timeout: float = 60) -> SystemdHost:
        """Start it and wait until ``systemctl is-system-running`` says running (or degraded)."""
        self.base.mkdir(parents=True, exist_ok=True)
        script = self.base.with_suffix(".boot.sh")
        script.write_text(BOOT)
        with self.base.with_suffix(".boot.log").open("wb") as log:
            self._unshare = subprocess.Popen(
                [
                    "unshare",
                    "--fork",
                    "--pid",
                    "--mount",
                    "--uts",
                    "sh",
                    str(script),
                    str(self.base),
                    str(CHECKOUT),
                ],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.pid = self._systemd_pid()
            if self.pid is not None:
                state = self.sh("systemctl is-system-running", check=False).stdout.strip()
                if state in ("running", "degraded"):
                    return self
            if self._unshare.poll() is not None:
                break
            time.sleep(0.2)
        raise RuntimeError(f"systemd did not boot: {self.base.with_suffix('.boot.log')}")

    def _systemd_pid(self) -> int | None:
        """The systemd that is PID 1 of our namespaces: the child of our unshare."""
        assert self._unshare is not None
        children = Path(f"/proc/{self._unshare.pid}/task/{self._unshare.pid}/children")
        with contextlib.suppress(OSError, ValueError):
            for pid in children.read_text().split():
                if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"/lib/systemd/systemd"):
                    return int(pid)
        return None

    def sh(
        self, command: str, *, check: bool = True, timeout: float = 120, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``command`` with sh inside; fail with its output when ``check`` and it fails."""
        assert self.pid is not None, "boot() first"
        done = subprocess.run(
            ["nsenter", "-t", str(self.pid), "-m", "-p", "-u", "sh", "-c", command],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            check=False,
        )
        result = subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(errors="replace"),
            done.stderr.decode(errors="replace"),
        )  # fmt: skip
        if check and done.returncode != 0:
            raise AssertionError(
                f"inside systemd: {command!r} exited {done.returncode}\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    def wait(self, command: str, timeout: float = 60, what: str = "a condition") -> str:
        """Run ``command`` until it succeeds; its output."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.sh(command, check=False)
            if done.returncode == 0:
                return done.stdout
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting for {what}: {done.stdout}{done.stderr}")
            time.sleep(0.2)

    def poweroff(self) -> None:
        """Power it off (its tmpfs and every write with it); kill it if it does not go."""
        if self._unshare is None:
            return
        if self.pid is not None:
            self.sh("systemctl poweroff", check=False, timeout=30)
        try:
            self._unshare.wait(30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._unshare.pid, 9)
            self._unshare.wait(10)
        with contextlib.suppress(OSError):
            self.base.rmdir()


def install_steps(install_md: Path, *, skip: tuple[str, ...] = ()) -> list[str]:
    """The commands of INSTALL.md's first shell block, step by step, comments removed.

    ``skip`` names steps to leave out by the start of their comment (``"3."``).
    """
    text = install_md.read_text()
    block = text.split("```sh\n", 1)[1].split("```", 1)[0]
    commands: list[str] = []
    step = ""
    for line in block.splitlines():
        stripped = line.strip()
        if stripped.startswith("# ") and stripped[2:3].isdigit():
            step = stripped[2:]
        if not stripped or stripped.startswith("#") or step.startswith(skip):
            continue
        commands.append(line.split("  #", 1)[0].strip() if "  #" in line else stripped)
    return commands


def quote(*args: str) -> str:
    """``args`` as one shell command line."""
    return shlex.join(args)
