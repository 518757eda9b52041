"""A private RabbitMQ node for one test: its own name, ports, cookie and data, all under tmp.

The shared broker on 127.0.0.1:5672 is never touched. A node is started by running
``/usr/lib/rabbitmq/bin/rabbitmq-server`` directly (the ``/usr/sbin`` wrapper would switch to the
rabbitmq user and its cookie) with every ``RABBITMQ_*`` path pointing into the node's folder:

    with rabbit_node(tmp_path) as node:
        ...  # node.url is amqp://guest:guest@127.0.0.1:PORT//
        node.restart()  # graceful stop, then start on the same ports and data (durable survives)
        node.kill()  # SIGKILL of the Erlang VM, like a crash; node.start() brings it back

A TLS listener is added with ``rabbit_node(tmp_path, tls=NodeTLS(ca, cert, key))``: it listens on
127.0.0.1:``node.tls_port`` (``node.tls_url()`` is ``amqps://guest:guest@localhost:PORT//``) and
verifies client certificates against ``ca`` when one is sent (``verify_peer``); with
``fail_if_no_peer_cert=True`` a client without one is refused. Certificate and key files
replaced in place are served to new connections after ``node.reload_certificates()``.

A node whose folder was written elsewhere (a member of a cluster made by ``deploy/cluster.sh``,
see ``rabbitcluster.py``) is driven the same way: ``RabbitNode(base, env=NODE_ENV, argv=RUN)``
takes its name, ports and paths from ``env`` (the ``RABBITMQ_*`` settings of its ``node.env``)
and runs ``argv`` in the foreground instead of the server script. ``launch()`` starts a node
without waiting, so several boot at once; ``wait_ready()`` then waits for each.

A node left over from a crashed test run cannot disturb the next one: names are random, ports are
chosen free (outside the kernel's ephemeral range, so no client socket takes them between a stop
and a start), and the server script runs under ``setpriv --pdeathsig TERM``: when the process that
started it dies, the script is sent SIGTERM and stops the VM.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
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


def pick_ports(count: int) -> list[int]:
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


def clean_environ() -> dict[str, str]:
    """This process's environment without RABBITMQ_* / ERL_* / CONF_* (a developer's shell)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_", "CONF_"))}


@dataclasses.dataclass(frozen=True)
class NodeTLS:
    """The node's TLS listener: its CA (for client certificates), certificate and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    #: refuse clients that send no certificate (``ssl_options.fail_if_no_peer_cert``).
    fail_if_no_peer_cert: bool = False


class RabbitNode:
    """One private RabbitMQ node: start, wait until ready, stop gracefully, kill, restart.

    ``start()`` and ``restart()`` should be called from a thread that lives as long as the node
    (the main thread in a test): the parent-death signal fires when the starting thread exits.
    """

    def __init__(
        self,
        base: Path,
        tls: NodeTLS | None = None,
        *,
        env: Mapping[str, str] | None = None,
        argv: Sequence[str] = (SERVER,),
    ) -> None:
        """A node in ``base``: a new one (name and ports chosen, folder written) or, with
        ``env``, one whose folder and ``RABBITMQ_*`` settings were written elsewhere; ``argv``
        runs it in the foreground (it must end up exec'ing the server script).
        """
        self.base = base
        self.tls = tls
        self.argv = list(argv)
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = base / "server.out"
        #: the TLS listener's port (on 127.0.0.1), or None for a node without TLS.
        self.tls_port: int | None = None
        if env is None:
            self.id = secrets.token_hex(4)
            self.host = socket.gethostname().split(".")[0]
            self.name = f"lftest-{self.id}@{self.host}"
            ports = pick_ports(3 if tls else 2)
            self.port, self.dist_port = ports[:2]
            self.tls_port = ports[2] if tls else None
            self.env = self._prepare()
        else:
            if tls is not None:
                raise ValueError("a node given by its env has the TLS listener its config has")
            self.name = env["RABBITMQ_NODENAME"]
            self.id, _, self.host = self.name.partition("@")
            self.port = int(env["RABBITMQ_NODE_PORT"])
            self.dist_port = int(env["RABBITMQ_DIST_PORT"])
            self.env = {**clean_environ(), **env}
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def tls_url(self, host: str = "localhost") -> str:
        """``amqps://guest:guest@HOST:TLS_PORT//`` (the listener itself is on 127.0.0.1)."""
        if self.tls_port is None:
            raise RuntimeError(f"RabbitMQ node {self.name} has no TLS listener")
        return f"amqps://guest:guest@{host}:{self.tls_port}//"

    def reload_certificates(self) -> None:
        """Make new connections read the certificate files again (replaced in place)."""
        result = self.ctl("eval", "ssl:clear_pem_cache().")
        if result.returncode != 0:
            raise RuntimeError(f"clearing the PEM cache of {self.name} failed: {result.stdout}")

    def _write_config(self) -> None:
        lines = [
            f"listeners.tcp.local = 127.0.0.1:{self.port}",
            "loopback_users = none",
            "log.console = false",
        ]
        if self.tls is not None:
            lines += [
                f"listeners.ssl.default = 127.0.0.1:{self.tls_port}",
                f"ssl_options.cacertfile = {self.tls.ca_file}",
                f"ssl_options.certfile = {self.tls.cert_file}",
                f"ssl_options.keyfile = {self.tls.key_file}",
                "ssl_options.verify = verify_peer",
                f"ssl_options.fail_if_no_peer_cert = {str(self.tls.fail_if_no_peer_cert).lower()}",
            ]
        (self.base / "rabbitmq.conf").write_text("".join(f"{line}\n" for line in lines))

    def _prepare(self) -> dict[str, str]:
        """Write the node's folder (home with cookie, config, plugins) and return its env."""
        base = self.base
        home = base / "home"
        home.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        cookie.write_text(secrets.token_hex(16).upper())
        cookie.chmod(0o400)
        config = base / "rabbitmq.conf"
        self._write_config()
        plugins = base / "enabled_plugins"
        plugins.write_text("[].\n")
        env_file = base / "rabbitmq-env.conf"
        env_file.write_text("")  # never read /etc/rabbitmq/rabbitmq-env.conf (the shared node's)
        env = clean_environ()
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
        self.launch(timeout)
        self.wait_ready(timeout)
        return self

    def launch(self, timeout: float = 60.0) -> None:
        """Start the node's server and return at once (``wait_ready`` waits for its boot)."""
        if self.running():
            raise RuntimeError(f"RabbitMQ node {self.name} is already running")
        self._wait_unregistered(timeout)
        argv = list(self.argv)
        setpriv = shutil.which("setpriv")
        if setpriv:
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
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

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the node accepts AMQP connections and reports it has fully booted."""
        deadline = time.monotonic() + timeout
        while not self._port_open(self.port):
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
        if self.tls_port is not None and not self._port_open(self.tls_port):
            raise RuntimeError(
                f"RabbitMQ node {self.name} booted without its TLS listener on "
                f"{self.tls_port}:\n{self.tail()}"
            )

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

    def _port_open(self, port: int) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
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
def rabbit_node(
    tmp_path: Path, *, start: bool = True, tls: NodeTLS | None = None
) -> Iterator[RabbitNode]:
    """A private RabbitMQ node under ``tmp_path``, started unless ``start=False``; always killed.

    With ``tls`` it also has a TLS listener on ``node.tls_port``.
    """
    base = tmp_path / f"rabbit-{secrets.token_hex(3)}"
    base.mkdir(parents=True)
    node = RabbitNode(base, tls)
    try:
        if start:
            node.start()
        yield node
    finally:
        node.close()
