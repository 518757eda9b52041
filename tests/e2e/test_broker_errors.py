"""Broker errors that cannot heal fail fast, in one sentence naming the cause and the fix.

Against the real broker: a wrong password, a vhost that does not exist, a user without
permissions (a throwaway user and vhost, deleted afterwards), a port nothing listens on, and,
on a private node with a TLS listener, a certificate that fails verification. The emitter fails
at once for the lasting ones (never waiting out ``--retry-for``); the daemon logs each once,
keeps retrying, and shows the whole reason in ``STATUS=``, the status file and ``logfan status``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2e.test_broker_tls import Pki, make_pki
from logfan_testkit import Daemon, log_events, read_lines, run_logfan, suffix, wait_for
from rabbitnode import SERVER, NodeTLS, RabbitNode, rabbit_node

pytestmark = [pytest.mark.rabbitmq, pytest.mark.processes]

SECRET = "Wr0ngPassw0rd"  # noqa: S105 - the wrong password, looked for in every output
#: the emitter's own words when it retried until --retry-for ran out (a transient failure).
RETRIED = "leaves no time for another try"


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (bound for a moment, never listened on)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class Case:
    """One test's exchange, sink, config files and password file."""

    def __init__(self, tmp_path: Path, rabbitmq: dict[str, Any]) -> None:
        self.tmp = tmp_path
        self.id = suffix()
        self.exchange = f"lferr-{self.id}"
        self.sink = f"err-{self.id}"
        rabbitmq["exchanges"].append(self.exchange)
        rabbitmq["queues"] += [f"logfan.{self.sink}", f"logfan.{self.sink}.dead"]

    def config(
        self, url: str, password: str, *, sinks: bool = True, **broker: Any
    ) -> tuple[Path, Path]:
        """A config whose broker password is in a file: ``(config, password file)``."""
        secret = self.tmp / f"password-{suffix()}"
        secret.write_text(f"{password}\n")
        secret.chmod(0o600)
        sink = {"type": "file", "path": str(self.tmp / "out.log"), "format": "{message}"}
        doc = {
            "broker": {
                "url": url,
                "exchange": self.exchange,
                "password_file": str(secret),
                **broker,
            },
            "daemon": {"status_file": str(self.tmp / "status.json")},
            "sinks": {self.sink: sink} if sinks else {},
        }
        path = self.tmp / f"logfan-{suffix()}.yaml"
        path.write_text(yaml.safe_dump(doc))
        return path, secret

    def emit(self, config: Path, *args: str) -> tuple[str, float]:
        """``logfan emit`` that must fail: its one line of stderr, and how long it took."""
        started = time.monotonic()
        done = run_logfan("emit", "-c", str(config), *args, "one line")
        elapsed = time.monotonic() - started
        err = done.stderr.decode()
        assert done.returncode == 1, f"emit did not fail: {err}"
        assert err.count("\n") == 1, f"not one line: {err!r}"
        assert "Traceback" not in err
        return err.rstrip("\n"), elapsed


@pytest.fixture
def case(tmp_path: Path, rabbitmq: dict[str, Any]) -> Case:
    return Case(tmp_path, rabbitmq)


def rabbitmqctl(*args: str) -> None:
    """Run rabbitmqctl against the shared broker (only on the test's own user and vhost)."""
    done = subprocess.run(
        ["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"rabbitmqctl {args}: {done.stdout}{done.stderr}"


@pytest.fixture
def throwaway_user(rabbitmq: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """A user and a vhost of the test's own on the shared broker, the user with no permissions
    yet; both deleted afterwards. Yields ``(user, vhost)``; the user's password is ``pw``."""
    if shutil.which("rabbitmqctl") is None:
        pytest.fail("rabbitmqctl is missing (run `make test`, which installs RabbitMQ)")
    user, vhost = f"lferr-user-{suffix()}", f"lferr-vhost-{suffix()}"
    rabbitmqctl("add_vhost", vhost)
    try:
        rabbitmqctl("add_user", user, "pw")
        try:
            yield user, vhost
        finally:
            rabbitmqctl("delete_user", user)
    finally:
        rabbitmqctl("delete_vhost", vhost)


class TestEmitFailsFast:
    """``logfan emit``: a failure retrying cannot heal ends it at once with its sentence."""

    def test_wrong_password_fails_within_2_s_naming_the_user(self, case: Case) -> None:
        """Wrong password for guest: exit 1 in under 2 s, the user named, the password not."""
        config, secret = case.config("amqp://guest@127.0.0.1:5672//", SECRET)
        line, elapsed = case.emit(config)  # --retry-for is 30 s by default
        print(f"emit with a wrong password failed after {elapsed:.2f} s: {line}")
        assert line == (
            "logfan emit: 1 line(s) not confirmed: the broker at 127.0.0.1:5672 refused the "
            "login of user 'guest': check the user name and the password "
            f"(broker.password_file {secret})"
        )
        assert SECRET not in line
        assert elapsed < 2.0, f"took {elapsed:.2f} s"

    def test_wrong_password_in_url_option_names_it(self, tmp_path: Path) -> None:
        """A wrong password given with ``--url`` (no config): the sentence sends the user to
        ``--url``, not to a broker.url that no file holds."""
        url = f"amqp://guest:{SECRET}@127.0.0.1:5672//"
        done = run_logfan("emit", "--url", url, "one line", cwd=tmp_path)
        assert done.returncode == 1
        warning, line = done.stderr.decode().splitlines()
        assert warning.startswith("logfan emit: warning: a password in --url is visible")
        assert line == (
            "logfan emit: 1 line(s) not confirmed: the broker at 127.0.0.1:5672 refused the "
            "login of user 'guest': check the user name and the password (--url)"
        )
        assert SECRET not in done.stderr.decode()

    def test_missing_vhost_is_named(self, case: Case) -> None:
        """A vhost the broker does not have: named, with how to fix the URL or create it."""
        vhost = f"nosuchvhost-{case.id}"
        config, _ = case.config(f"amqp://guest@127.0.0.1:5672/{vhost}", "guest")
        line, _ = case.emit(config)
        print(line)
        assert line == (
            "logfan emit: 1 line(s) not confirmed: the broker at 127.0.0.1:5672 has no vhost "
            f"'{vhost}': correct the vhost at the end of broker.url (// is the default vhost "
            f"'/'), or create it (rabbitmqctl add_vhost {vhost})"
        )

    def test_refused_port_names_host_and_port(self, case: Case) -> None:
        """Nothing listens: retried (it may heal) for --retry-for, then host and port named."""
        port = free_port()
        config, _ = case.config(f"amqp://guest@127.0.0.1:{port}//", "guest")
        line, _ = case.emit(config, "--retry-for", "1")
        print(line)
        assert line == (
            f"logfan emit: 1 line(s) not confirmed: --retry-for (1 s) {RETRIED} at the broker "
            f"at amqp://guest@127.0.0.1:{port}//: nothing listens on 127.0.0.1:{port}: is the "
            "broker running, and is the port right?"
        )

    def test_failover_list_with_a_wrong_password(self, case: Case) -> None:
        """First node down, second refusing the login: the login is what to fix (users are
        cluster-wide), named with the node that refused it, at once."""
        url = f"amqp://guest@127.0.0.1:{free_port()}//;amqp://guest@127.0.0.1:5672//"
        config, secret = case.config(url, SECRET)
        line, _ = case.emit(config)
        assert line == (
            "logfan emit: 1 line(s) not confirmed: the broker at 127.0.0.1:5672 refused the "
            "login of user 'guest': check the user name and the password "
            f"(broker.password_file {secret})"
        )


def needs(exchange: str) -> str:
    """The permissions logfan needs, as its sentences name them."""
    return (
        f"configure, write and read on exchange '{exchange}' and on the queues logfan.*, and "
        "write on amq.default for dead letters"
    )


class TestPermissions:
    """A user without the permissions logfan needs: which permission, on what, and the fix."""

    def test_no_permissions_on_the_vhost(self, case: Case, throwaway_user: tuple[str, str]) -> None:
        """No permissions at all on the vhost: refused at Connection.open."""
        user, vhost = throwaway_user
        config, _ = case.config(f"amqp://{user}@127.0.0.1:5672/{vhost}", "pw")
        line, _ = case.emit(config)
        print(line)
        assert line == (
            f"logfan emit: 1 line(s) not confirmed: user '{user}' has no permissions on vhost "
            f"'{vhost}' of the broker at 127.0.0.1:5672: grant them (rabbitmqctl "
            f"set_permissions -p {vhost} {user} '.*' '.*' '.*', or narrower: logfan needs "
            f"{needs(case.exchange)})"
        )

    def test_queue_and_exchange_permissions(
        self, case: Case, throwaway_user: tuple[str, str]
    ) -> None:
        """configure refused on the sink queue (Queue.declare), then write refused on the
        exchange (Basic.publish): each named with the operation the broker refused."""
        user, vhost = throwaway_user
        url = f"amqp://{user}@127.0.0.1:5672/{vhost}"
        rabbitmqctl("set_permissions", "-p", vhost, user, f"^{case.exchange}$", ".*", ".*")
        config, _ = case.config(url, "pw")
        line, _ = case.emit(config)
        print(line)
        assert line == (
            f"logfan emit: 1 line(s) not confirmed: user '{user}' lacks the configure permission "
            f"on queue 'logfan.{case.sink}' in vhost '{vhost}' (Queue.declare was refused): "
            f"grant it with rabbitmqctl set_permissions (logfan needs {needs(case.exchange)})"
        )

        rabbitmqctl("set_permissions", "-p", vhost, user, ".*", "^logfan\\..*", ".*")
        line, _ = case.emit(config)
        print(line)
        assert line == (
            f"logfan emit: 1 line(s) not confirmed: user '{user}' lacks the write permission on "
            f"exchange '{case.exchange}' in vhost '{vhost}' (Basic.publish was refused): grant "
            f"it with rabbitmqctl set_permissions (logfan needs {needs(case.exchange)})"
        )

    def test_the_documented_narrow_permissions_suffice(
        self, case: Case, tmp_path: Path, throwaway_user: tuple[str, str], daemons: list[Daemon]
    ) -> None:
        """docs/operations.md's set_permissions for a shared vhost: lines are emitted,
        delivered, dead-lettered (published to amq.default) and listed by `logfan dead`."""
        user, vhost = throwaway_user
        mine = f"^({case.exchange}|logfan\\..*)$"
        writes = f"^({case.exchange}|amq\\.default|logfan\\..*)$"
        rabbitmqctl("set_permissions", "-p", vhost, user, mine, writes, mine)
        rejects = tmp_path / "rejects"
        rejects.write_text("bad\n")
        sink = {
            "type": "picky",
            "path": str(tmp_path / "out.log"),
            "reject_file": str(rejects),
            "refuse": "permanent",
        }
        config, _ = case.config(f"amqp://{user}@127.0.0.1:5672/{vhost}", "pw")
        doc = yaml.safe_load(config.read_text())
        doc["sinks"] = {case.sink: sink}
        config.write_text(yaml.safe_dump(doc))

        done = run_logfan("emit", "-c", str(config), stdin=b"good line\nbad line\n")
        assert done.returncode == 0, done.stderr.decode()
        daemons.append(Daemon(config, tmp_path).start())
        wait_for(lambda: read_lines(tmp_path / "out.log") == ["good line"], what="the good line")

        def dead() -> str:
            listed = run_logfan("dead", "-c", str(config), case.sink)
            assert listed.returncode == 0, listed.stderr.decode()
            return str(listed.stdout.decode())

        wait_for(lambda: "bad line" in dead(), what="the bad line dead-lettered")
        assert daemons[0].stop() == 0
        assert "consumer disconnected" not in daemons[0].logs()


class NotifySocket:
    """A real NOTIFY_SOCKET: every datagram the daemon sends, as its fields."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.1)
        self.fields: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self.fields += self.sock.recv(65536).decode().split("\n")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


class TestDaemon:
    """``logfan run`` with a wrong password: logged once, retried, the whole reason shown."""

    def test_wrong_password_logged_once_and_shown_whole(
        self, case: Case, tmp_path: Path, daemons: list[Daemon]
    ) -> None:
        config, secret = case.config("amqp://guest@127.0.0.1:5672//", SECRET)
        reason = (
            "the broker at 127.0.0.1:5672 refused the login of user 'guest': check the user "
            f"name and the password (broker.password_file {secret})"
        )
        notify = NotifySocket(tmp_path / "notify.sock")
        try:
            daemon = Daemon(
                config,
                tmp_path,
                log_level="debug",
                env={"NOTIFY_SOCKET": str(notify.sock.getsockname())},
            ).start()
            daemons.append(daemon)

            def mine(event: str) -> list[dict[str, Any]]:
                return [e for e in log_events(daemon, event) if e.get("sink") == case.sink]

            # the consumer keeps retrying (each retry logged at debug level only) ...
            wait_for(lambda: len(mine("consumer still refused")) >= 3, what="three retries")
            # ... and the refusal was logged once, at error level, with the whole reason
            [logged] = mine("consumer disconnected")
            assert (logged["level"], logged["error"], logged["cause"]) == ("error", reason, "login")
            assert all(e["error"] == reason for e in mine("consumer still refused"))

            # READY=1 came (systemd must not time out), and STATUS= carries the whole reason
            assert "READY=1" in notify.fields
            wait_for(lambda: any(f.startswith("STATUS=") for f in notify.fields), what="STATUS=")
            status = [f for f in notify.fields if f.startswith("STATUS=")][-1]
            assert status == (
                f"STATUS={case.sink} disconnected 0 delivered queue not readable ({reason})"
            )

            doc = json.loads((tmp_path / "status.json").read_text())
            assert doc["sinks"][case.sink]["last_error"] == reason

            done = run_logfan("status", "-c", str(config))
            out = done.stdout.decode()
            print(out)
            assert done.returncode == 1, "the broker refuses `logfan status` too"
            [row] = [line for line in out.splitlines() if line.startswith(case.sink)]
            assert row.endswith(f"  {reason}"), row
            assert f"broker: amqp://guest@127.0.0.1:5672//: {reason}" in out

            probe = run_logfan("check", "--probe", "-c", str(config)).stdout.decode()
            assert f"broker amqp://guest@127.0.0.1:5672//: FAILED: {reason}\n" in probe, probe

            assert daemon.stop() == 0
            everything = daemon.logs() + out + probe + json.dumps(doc) + "\n".join(notify.fields)
            assert SECRET not in everything
            assert "Traceback" not in everything
        finally:
            notify.close()


@pytest.fixture(scope="class")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RabbitNode, Pki]]:
    """A private node whose TLS listener serves a certificate for DNS:localhost only."""
    if not Path(SERVER).exists():
        pytest.fail(f"{SERVER} is missing (run `make test`, which installs RabbitMQ)")
    base = tmp_path_factory.mktemp("tls-errors")
    pki = make_pki(base / "pki")
    with rabbit_node(base, tls=NodeTLS(pki.ca, pki.localhost_only, pki.localhost_only_key)) as node:
        yield node, pki


@pytest.mark.rabbitmq_node
class TestTLS:
    """A certificate that fails verification is final: emit fails at once with the fix."""

    def test_untrusted_certificate(self, tls_node: tuple[RabbitNode, Pki], case: Case) -> None:
        """A CA that did not sign the broker's certificate: the CA file to change is named."""
        node, pki = tls_node
        config, _ = case.config(
            node.tls_url("localhost").replace(":guest@", "@"),
            "guest",
            tls={"ca_file": str(pki.other_ca)},
        )
        line, _ = case.emit(config)
        print(line)
        assert RETRIED not in line
        assert line.startswith(
            "logfan emit: 1 line(s) not confirmed: the TLS certificate of the broker at "
            f"localhost:{node.tls_port} failed verification (certificate verify failed: "
        ), line
        assert line.endswith(
            f"): broker.tls.ca_file {pki.other_ca} did not sign it: point it to the CA that did"
        ), line

    def test_host_name_mismatch(self, tls_node: tuple[RabbitNode, Pki], case: Case) -> None:
        """The certificate names localhost, the URL 127.0.0.1: the fix is the name."""
        node, pki = tls_node
        config, _ = case.config(
            node.tls_url("127.0.0.1").replace(":guest@", "@"), "guest", tls={"ca_file": str(pki.ca)}
        )
        line, _ = case.emit(config)
        print(line)
        assert line == (
            "logfan emit: 1 line(s) not confirmed: the TLS certificate of the broker at "
            f"127.0.0.1:{node.tls_port} failed verification (certificate verify failed: IP "
            "address mismatch, certificate is not valid for '127.0.0.1'): put a host name the "
            "certificate carries in broker.url, or set broker.tls.server_name to it"
        )
