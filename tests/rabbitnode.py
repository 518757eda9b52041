"""A private RabbitMQ node for one test: its own name, ports, cookie and data, all under tmp.

The shared broker on 127.0.0.1:5672 is never touched. A node is started by running
``/usr/lib/rabbitmq/bin/rabbitmq-server`` directly (the ``/usr/sbin`` wrapper would switch to the
rabbitmq user and its cookie) with every ``RABBITMQ_*`` path pointing into the node's folder:

    with rabbit_node(tmp_path) as node:
        ...  # node.url is amqp://guest:guest@127.0.0.1:PORT//
        node.restart()  # graceful stop, then start on the same ports and data (durable survives)
        node.kill()  # SIGKILL of the Erlang VM, like a crash; node.start() brings it back

A node left over from a crashed test run cannot disturb the next one: names are random, ports are
chosen free (outside the kernel's ephemeral range, so no client socket takes them between a stop
and a start), and the server script runs under ``setpriv --pdeathsig TERM``: when the process that
started it dies, the script is sent SIGTERM and stops the VM.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
#: ports are drawn from here: below the ephemeral range (32768+) and away from the shared
#: node's 5672 / 25672; rabbitmqctl's own distribution ports are the node's + 10000 (< 32768).
PORT_RANGE = (20000, 22700)


def _free(port: int) -> bool:
    """True if nothing listens on ``port`` (IPv4, any address) right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("0.0.0.0", port))  # a probe: closed at once, never listens
        except OSError:
            return False
    return True


def _pick_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free now (their CLI ports, + 10000, too)."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randrange(*PORT_RANGE)
        if port not in chosen and _free(port) and _free(port + 10000):
            chosen.append(port)
    return chosen


def _epmd_names() -> str:
    """What the local epmd says is registered (empty if it cannot be asked)."""
    epmd = shutil.which("epmd") or "/usr/bin/epmd"
    try:
        out = subprocess.run(
            [epmd, "-names"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout


class RabbitNode:
    """One private RabbitMQ node: start, wait until ready, stop gracefully, kill, restart.

    ``start()`` and ``restart()`` should be called from a thread that lives as long as the node
    (the main thread in a test): the parent-death signal fires when the starting thread exits.
    """

    def __init__(self, base: Path) -> None:
        self.base = base
        self.id = secrets.token_hex(4)
        self.host = socket.gethostname().split(".")[0]
        self.name = f"lftest-{self.id}@{self.host}"
        self.port, self.dist_port = _pick_ports(2)
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = base / "server.out"
        self.env = self._prepare()

    def _prepare(self) -> dict[str, str]:
        """Write the node's folder (home with cookie, config, plugins) and return its env."""
        base = self.base
        home = base / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        config = base / "rabbitmq.conf"
        config.write_text(
            f"listeners.tcp.local = 127.0.0.1:{self.port}\n"
            "loopback_users = none\n"
            "log.console = false\n"
        )
        plugins = base / "enabled_plugins"
        plugins.write_text("[].\n")
        env_file = base / "rabbitmq-env.conf"
        env_file.write_text("")  # never read /etc/rabbitmq/rabbitmq-env.conf (the shared node's)
        # Inherited RABBITMQ_* / ERL_* settings (a developer's shell) must not leak into the node.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_", "CONF_"))
        }
        env.update(
            HOME=str(home),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_CONF_ENV_FILE=str(env_file),
            RABBITMQ_CONFIG_FILE=str(config),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(base / "advanced.config"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(plugins),
            RABBITMQ_MNESIA_BASE=str(base / "mnesia"),
            RABBITMQ_LOG_BASE=str(base / "log"),
            RABBITMQ_PID_FILE=str(base / "rabbitmq.pid"),
            ERL_CRASH_DUMP=str(base / "erl_crash.dump"),
            # Two cores on the test machines: one scheduler, distribution on loopback only.
            RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=(
                "+S 1:1 -kernel inet_dist_use_interface {127,0,0,1}"
            ),
        )
        return env

    # -- lifecycle -------------------------------------------------------------------------

    def running(self) -> bool:
        """True while the server script (and so the VM) is alive."""
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 60.0) -> RabbitNode:
        """Start the node (same name, ports and data as before, if it ran) and wait until ready."""
        if self.running():
            raise RuntimeError(f"RabbitMQ node {self.name} is already running")
        self._wait_unregistered(timeout)
        argv = [SERVER]
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "TERM", "--", SERVER]
        with self.output.open("ab") as out:
            self.proc = subprocess.Popen(
                argv,
                env=self.env,
                cwd=self.base,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: cleanup kills all of it
            )
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the node accepts AMQP connections and reports it has fully booted."""
        deadline = time.monotonic() + timeout
        while not self._port_open():
            if not self.running():
                raise RuntimeError(
                    f"RabbitMQ node {self.name} exited while starting:\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"RabbitMQ node {self.name} not up in {timeout} s:\n{self.tail()}"
                )
            time.sleep(0.1)
        left = max(1, int(deadline - time.monotonic()))
        result = self.ctl("await_startup", "--timeout", str(left), timeout=left + 10)
        if result.returncode != 0:
            raise RuntimeError(f"RabbitMQ node {self.name} did not boot: {result.stdout}")

    def stop(self, timeout: float = 60.0) -> None:
        """Stop gracefully (``rabbitmqctl stop``: queues and messages are flushed to disk)."""
        if not self.running():
            return
        result = self.ctl("stop", timeout=timeout)
        if result.returncode != 0 and self.running():
            raise RuntimeError(f"rabbitmqctl stop {self.name} failed: {result.stdout}")
        self._reap(timeout)

    def kill(self, timeout: float = 30.0) -> None:
        """SIGKILL the Erlang VM, like a crash or the OOM killer; the data folder stays."""
        if not self.running():
            return
        pid = self.beam_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        else:  # not booted far enough to write its pid: the whole group goes
            self._kill_group()
        self._reap(timeout)

    def restart(self, timeout: float = 60.0) -> None:
        """Graceful stop, then start again on the same ports with the same data."""
        self.stop(timeout)
        self.start(timeout)

    def close(self) -> None:
        """Kill whatever is left of the node (idempotent); nothing outside ``base`` is touched."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.kill(timeout=10.0)  # the VM first, so the script reaps it; then the group
        self._reap(30.0)
        self._wait_unregistered(30.0)

    # -- helpers ---------------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n NODE ARGS`` with the node's HOME (cookie) and env."""
        return subprocess.run(
            [CTL, "-q", "-n", self.name, *args],
            env=self.env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def beam_pid(self) -> int | None:
        """The running Erlang VM's pid (from the node's pid file; a child of the server script)."""
        if self.proc is None:
            return None
        try:
            text = Path(self.env["RABBITMQ_PID_FILE"]).read_text().strip()
            # /proc/PID/stat: "pid (comm) state ppid ..."; comm may hold spaces, not ")".
            stat = Path(f"/proc/{text}/stat").read_text() if text.isdigit() else ""
        except (FileNotFoundError, ProcessLookupError):
            return None
        fields = stat.rpartition(")")[2].split()
        if len(fields) < 2 or fields[1] != str(self.proc.pid):
            return None
        return int(text)

    def tail(self, lines: int = 30) -> str:
        """The end of the server's output, for error messages."""
        try:
            text = self.output.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _port_open(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _kill_group(self) -> None:
        # Only while the script is not reaped: its pid (the group id) cannot be reused until then.
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def _reap(self, timeout: float) -> None:
        """Wait for the server script to exit, kill stragglers of its group, then reap it."""
        assert self.proc is not None
        pid = self.proc.pid
        deadline = time.monotonic() + timeout
        while self.proc.returncode is None:
            # WNOWAIT: the script stays a zombie, so its process group id stays ours.
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
            if info is not None:
                self._kill_group()  # erl_child_setup, inet_gethost...
                self.proc.wait()
                break
            if time.monotonic() > deadline:
                self._kill_group()
                self.proc.wait(10)
                break
            time.sleep(0.05)
        with contextlib.suppress(FileNotFoundError):
            Path(self.env["RABBITMQ_PID_FILE"]).unlink()

    def _wait_unregistered(self, timeout: float) -> None:
        """Wait until epmd forgets the node's name (it does once the VM's socket is closed)."""
        short = self.name.split("@")[0]
        pattern = re.compile(rf"^name {re.escape(short)} at port", re.MULTILINE)
        deadline = time.monotonic() + timeout
        while pattern.search(_epmd_names()):
            if time.monotonic() > deadline:
                raise RuntimeError(f"epmd still lists {self.name} after {timeout} s")
            time.sleep(0.1)


@contextlib.contextmanager
def rabbit_node(tmp_path: Path, *, start: bool = True) -> Iterator[RabbitNode]:
    """A private RabbitMQ node under ``tmp_path``, started unless ``start=False``; always killed."""
    base = tmp_path / f"rabbit-{secrets.token_hex(3)}"
    base.mkdir(parents=True)
    node = RabbitNode(base)
    try:
        if start:
            node.start()
        yield node
    finally:
        node.close()
