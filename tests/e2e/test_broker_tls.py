"""logfan over TLS to RabbitMQ (``amqps://``), on a private node with a TLS listener.

The test makes its own PKI with openssl: a CA, a server certificate for ``localhost`` (SAN
DNS:localhost and IP:127.0.0.1), one for DNS:localhost only, a client certificate, and an
unrelated second CA. The node (never the shared broker) verifies client certificates against the
CA when one is sent; the second class's node refuses clients without one. Every command's output
and every daemon log is checked for the password (``:guest@`` must never appear).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from logfan_testkit import Daemon, read_lines, run_logfan, suffix, wait_for
from rabbitnode import SERVER, NodeTLS, RabbitNode, rabbit_node

pytestmark = [pytest.mark.rabbitmq_node, pytest.mark.processes]

#: what a URL with its password shows; the redacted form is ":***@".
PASSWORD_SHOWN = b":guest@"
#: what a client without a certificate sees: over TLS 1.3 the broker refuses it after the
#: handshake, with an alert the client reads, or (a race) a close it reads before the alert.
NO_CLIENT_CERT = ("alert certificate required", "EOF occurred in violation of protocol")


@dataclasses.dataclass(frozen=True)
class Pki:
    """The certificates and keys of one test class."""

    ca: Path
    other_ca: Path
    server: Path  # DNS:localhost, IP:127.0.0.1
    server_key: Path
    localhost_only: Path  # DNS:localhost
    localhost_only_key: Path
    client: Path  # CN=logfan-client, clientAuth
    client_key: Path


def _openssl(*args: str | Path) -> None:
    done = subprocess.run(
        ["openssl", *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(map(str, args))} failed: {done.stderr}")


def _ca(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    _openssl(
        "req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return cert, key


def _leaf(folder: Path, ca: tuple[Path, Path], name: str, cn: str, ext: str) -> tuple[Path, Path]:
    cert, key, csr = folder / f"{name}.pem", folder / f"{name}.key", folder / f"{name}.csr"
    extfile = folder / f"{name}.ext"
    extfile.write_text(
        f"{ext}\nkeyUsage=critical,digitalSignature\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", csr, "-subj", f"/CN={cn}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-set_serial",
        str(int.from_bytes(os.urandom(8), "big")), "-days", "2", "-extfile", extfile, "-out", cert,
    )  # fmt: skip
    return cert, key


def make_pki(folder: Path) -> Pki:
    """A CA with server and client certificates, and an unrelated CA, under ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    ca = _ca(folder, "ca")
    other_ca = _ca(folder, "other-ca")
    server_ext = "extendedKeyUsage=serverAuth\nsubjectAltName="
    server = _leaf(folder, ca, "server", "localhost", server_ext + "DNS:localhost,IP:127.0.0.1")
    only = _leaf(folder, ca, "localhost-only", "localhost", server_ext + "DNS:localhost")
    client = _leaf(folder, ca, "client", "logfan-client", "extendedKeyUsage=clientAuth")
    return Pki(ca[0], other_ca[0], *server, *only, *client)


@dataclasses.dataclass
class TlsBroker:
    """A running node with a TLS listener, the PKI, and the files the listener serves."""

    node: RabbitNode
    pki: Pki
    served: NodeTLS

    @property
    def port(self) -> int:
        assert self.node.tls_port is not None
        return self.node.tls_port

    @contextlib.contextmanager
    def serving(self, cert: Path, key: Path) -> Iterator[None]:
        """Serve another certificate to new connections for a while (files replaced in place)."""
        try:
            self._serve(cert, key)
            yield
        finally:
            self._serve(self.pki.server, self.pki.server_key)

    def _serve(self, cert: Path, key: Path) -> None:
        for source, target in ((cert, self.served.cert_file), (key, self.served.key_file)):
            shutil.copyfile(source, target.with_suffix(".new"))
            target.with_suffix(".new").replace(target)
        self.node.reload_certificates()


def _tls_broker(
    tmp_path_factory: pytest.TempPathFactory, *, require_client_cert: bool
) -> Iterator[TlsBroker]:
    if not Path(SERVER).exists():
        pytest.fail(f"{SERVER} is missing (run `make test`, which installs RabbitMQ)")
    base = tmp_path_factory.mktemp("tls-broker")
    pki = make_pki(base / "pki")
    served = NodeTLS(pki.ca, base / "served.pem", base / "served.key", require_client_cert)
    shutil.copyfile(pki.server, served.cert_file)
    shutil.copyfile(pki.server_key, served.key_file)
    with rabbit_node(base, tls=served) as node:
        yield TlsBroker(node, pki, served)


@pytest.fixture(scope="class")
def tls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """A node whose TLS listener verifies client certificates when one is sent."""
    yield from _tls_broker(tmp_path_factory, require_client_cert=False)


@pytest.fixture(scope="class")
def mtls_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsBroker]:
    """A node whose TLS listener refuses clients without a certificate from the CA."""
    yield from _tls_broker(tmp_path_factory, require_client_cert=True)


class Case:
    """One test's exchange, sink and file; writes configs and runs logfan, never showing secrets."""

    def __init__(self, tmp_path: Path, daemons: list[Daemon]) -> None:
        self.tmp = tmp_path
        self.daemons = daemons
        self.id = suffix()
        self.exchange = f"lftls-{self.id}"
        self.sink = f"tls-{self.id}"
        self.out = tmp_path / "tls.log"

    def config(self, name: str, url: str, **tls: Any) -> Path:
        path = self.tmp / name
        path.write_text(
            yaml.safe_dump(
                {
                    "broker": {
                        "url": url,
                        "exchange": self.exchange,
                        "tls": {k: str(v) for k, v in tls.items()},
                    },
                    "sinks": {
                        self.sink: {"type": "file", "path": str(self.out), "format": "{message}"}
                    },
                    "daemon": {"status_file": str(self.tmp / "status.json")},
                }
            )
        )
        path.chmod(0o600)  # a URL with a password: no "readable by other users" warning
        return path

    def logfan(
        self, *args: str | Path, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        """Run a logfan command; its output must never show the password."""
        done: subprocess.CompletedProcess[bytes] = run_logfan(*map(str, args), stdin=stdin)
        for stream in (done.stdout, done.stderr):
            assert PASSWORD_SHOWN not in stream, f"password shown by logfan {args}: {stream!r}"
        return done

    def probe(self, config: Path, url: str) -> tuple[int, str]:
        """``logfan check --probe``: its exit code and the broker's line."""
        done = self.logfan("check", "--probe", "-c", config)
        lines = done.stdout.decode().splitlines()
        prefix = f"broker {url.replace(':guest@', ':***@')}: "
        mine = [line for line in lines if line.startswith(prefix)]
        assert len(mine) == 1, f"no single broker line in the probe's output: {lines}"
        return done.returncode, mine[0].removeprefix(prefix)

    def emit_fails(self, config: Path) -> str:
        """``logfan emit --retry-for 2 x`` must fail with one line and no traceback."""
        done = self.logfan("emit", "-c", config, "--retry-for", "2", "x")
        err = done.stderr.decode()
        assert done.returncode == 1, f"emit did not fail: rc={done.returncode} {err}"
        assert err.count("\n") == 1, f"not one line: {err!r}"
        assert err.startswith("logfan emit: "), err
        assert "Traceback" not in err, err
        assert done.stdout == b"", done.stdout
        return err.rstrip("\n")

    def emit(self, config: Path, *lines: str) -> None:
        body = "".join(f"{line}\n" for line in lines).encode()
        done = self.logfan("emit", "-c", config, stdin=body)
        assert done.returncode == 0, done.stderr.decode()
        assert done.stderr == b"", done.stderr.decode()

    def start(self, config: Path, log_level: str = "info") -> Daemon:
        daemon = Daemon(config, self.tmp, log_level=log_level).start()
        self.daemons.append(daemon)
        return daemon

    def stop(self, daemon: Daemon) -> None:
        """Stop the daemon (exit 0 expected) and check it never showed the password."""
        code = daemon.stop()
        logs = daemon.logs().encode() + daemon.stdout.read_bytes()
        assert PASSWORD_SHOWN not in logs, f"password in the daemon's output:\n{daemon.logs()}"
        assert code == 0, f"the daemon exited {code}:\n{daemon.logs()}"

    def events(self, daemon: Daemon, name: str) -> list[dict[str, Any]]:
        """The daemon's JSON log events called ``name`` for this case's sink."""
        found = []
        for line in daemon.logs().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not a JSON log line
            mine = isinstance(event, dict) and event.get("sink") == self.sink
            if mine and event.get("event") == name:
                found.append(event)
        return found


def tls_connections(node: RabbitNode) -> list[list[str]]:
    """``[ssl, peer_cert_subject]`` of every client connection on the node."""
    listing = node.ctl("list_connections", "ssl", "peer_cert_subject", "--no-table-headers")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    return [row.split("\t") for row in listing.stdout.splitlines() if row.strip()]


@pytest.fixture
def case(tmp_path: Path, daemons: list[Daemon]) -> Case:
    return Case(tmp_path, daemons)


class TestBrokerTLS:
    """``amqps://`` with the CA given in ``broker.tls``; the chain and the host name are checked."""

    def test_emit_run_and_probe_over_tls(self, tls_broker: TlsBroker, case: Case) -> None:
        """Lines emitted before and while the daemon runs reach the file, over TLS only."""
        url = tls_broker.node.tls_url()  # amqps://guest:guest@localhost:PORT//
        config = case.config("logfan.yaml", url, ca_file=tls_broker.pki.ca)
        code, broker_line = case.probe(config, url)
        assert (code, broker_line) == (0, "OK")

        case.emit(config, "sent before the daemon")
        daemon = case.start(config)
        wait_for(lambda: read_lines(case.out) == ["sent before the daemon"], what="the first line")
        case.emit(config, "one", "two")
        wait_for(
            lambda: read_lines(case.out) == ["sent before the daemon", "one", "two"],
            what="the lines sent while the daemon runs",
        )
        # The daemon's consumer is the node's only client now, and it speaks TLS.
        wait_for(lambda: len(tls_connections(tls_broker.node)) == 1, what="one connection")
        assert [row[0] for row in tls_connections(tls_broker.node)] == ["true"]
        case.stop(daemon)

    def test_wrong_ca_is_refused_with_the_reason(self, tls_broker: TlsBroker, case: Case) -> None:
        """A CA that did not sign the broker's certificate: probe, emitter and daemon say why."""
        url = tls_broker.node.tls_url()
        wrong = case.config("daemon.yaml", url, ca_file=tls_broker.pki.other_ca)
        code, broker_line = case.probe(wrong, url)
        assert code == 1
        assert broker_line.startswith("FAILED: "), broker_line
        assert "certificate verify failed" in broker_line, broker_line
        print(f"probe with the wrong CA: {broker_line}")

        err = case.emit_fails(wrong)
        assert "certificate verify failed" in err, err
        print(f"emit with the wrong CA: {err}")

        # A certificate that fails verification does not heal by retrying: logged once as an
        # error, then each retry at debug level only.
        daemon = case.start(wrong, log_level="debug")
        wait_for(
            lambda: len(case.events(daemon, "consumer still refused")) >= 2,
            what="two more failed connects",
        )
        [logged] = case.events(daemon, "consumer disconnected")
        assert logged["level"] == "error", logged
        assert "certificate verify failed" in logged["error"], logged
        assert daemon.proc is not None
        assert daemon.proc.poll() is None, daemon.logs()

        # Still alive and retrying: the right CA, saved and reloaded, delivers the line.
        right = case.config("right-ca.yaml", url, ca_file=tls_broker.pki.ca)
        case.emit(right, "after the fix")
        assert case.config("daemon.yaml", url, ca_file=tls_broker.pki.ca) == wrong
        daemon.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: read_lines(case.out) == ["after the fix"], what="the line after the fix")
        case.stop(daemon)

    def test_host_name_is_checked_by_default(self, tls_broker: TlsBroker, case: Case) -> None:
        """A certificate for ``localhost`` only: ``amqps://127.0.0.1`` is refused, naming the
        mismatch, and ``tls: {server_name: localhost}`` makes the same URL work."""
        url = tls_broker.node.tls_url("127.0.0.1")
        pki = tls_broker.pki
        by_ip = case.config("by-ip.yaml", url, ca_file=pki.ca)
        named = case.config("named.yaml", url, ca_file=pki.ca, server_name="localhost")
        with tls_broker.serving(pki.localhost_only, pki.localhost_only_key):
            code, broker_line = case.probe(by_ip, url)
            assert code == 1
            assert broker_line.startswith("FAILED: "), broker_line
            assert "mismatch" in broker_line, broker_line
            assert "certificate is not valid for '127.0.0.1'" in broker_line, broker_line
            print(f"probe of 127.0.0.1, certificate for localhost only: {broker_line}")

            assert case.probe(named, url) == (0, "OK")
            case.emit(named, "checked as localhost")
            daemon = case.start(named)
            wait_for(lambda: read_lines(case.out) == ["checked as localhost"], what="the line")
            case.stop(daemon)

    def test_server_name_is_checked(self, tls_broker: TlsBroker, case: Case) -> None:
        """``server_name`` replaces the URL's host in the check (the same URL works without)."""
        url = tls_broker.node.tls_url()
        wrong = case.config(
            "wrong.yaml", url, ca_file=tls_broker.pki.ca, server_name="wrong.example"
        )
        code, broker_line = case.probe(wrong, url)
        assert code == 1
        assert "Hostname mismatch" in broker_line, broker_line
        assert "certificate is not valid for 'wrong.example'" in broker_line, broker_line

    def test_plain_amqp_to_the_tls_port_fails_clearly(
        self, tls_broker: TlsBroker, case: Case
    ) -> None:
        """``amqp://`` (no TLS) to the TLS listener: one clear sentence, no traceback, no hang."""
        url = f"amqp://guest:guest@localhost:{tls_broker.port}//"
        plain = case.config("plain.yaml", url)
        code, broker_line = case.probe(plain, url)
        assert code == 1
        assert broker_line.startswith("FAILED: "), broker_line
        print(f"probe with amqp:// to the TLS port: {broker_line}")
        err = case.emit_fails(plain)
        print(f"emit with amqp:// to the TLS port: {err}")

    def test_localhost_url_is_checked_as_localhost(self, tls_broker: TlsBroker, case: Case) -> None:
        """``amqps://...@localhost`` with a certificate for DNS:localhost only should work."""
        url = tls_broker.node.tls_url("localhost")
        config = case.config("localhost.yaml", url, ca_file=tls_broker.pki.ca)
        pki = tls_broker.pki
        with tls_broker.serving(pki.localhost_only, pki.localhost_only_key):
            assert case.probe(config, url) == (0, "OK")

    def test_failover_checks_the_next_nodes_name(self, tls_broker: TlsBroker, case: Case) -> None:
        """The first node is down (nothing listens on 127.0.0.2): the second one is used, and
        its certificate must be checked against its own name."""
        down = f"amqps://guest:guest@127.0.0.2:{tls_broker.port}//"
        url = f"{down};{tls_broker.node.tls_url('localhost')}"
        config = case.config("failover.yaml", url, ca_file=tls_broker.pki.ca)
        assert case.probe(config, url) == (0, "OK")


class TestClientCertificate:
    """A broker that requires a client certificate (``fail_if_no_peer_cert = true``)."""

    def test_client_certificate_required(self, mtls_broker: TlsBroker, case: Case) -> None:
        """Without ``cert_file``/``key_file`` the broker refuses; with them lines flow, and the
        broker sees the client's certificate."""
        url = mtls_broker.node.tls_url()
        pki = mtls_broker.pki
        anonymous = case.config("anonymous.yaml", url, ca_file=pki.ca)
        code, broker_line = case.probe(anonymous, url)
        assert code == 1
        assert broker_line.startswith("FAILED: "), broker_line
        assert any(reason in broker_line for reason in NO_CLIENT_CERT), broker_line
        print(f"probe without a client certificate: {broker_line}")
        err = case.emit_fails(anonymous)
        assert any(reason in err for reason in NO_CLIENT_CERT), err
        print(f"emit without a client certificate: {err}")

        config = case.config(
            "client.yaml", url, ca_file=pki.ca, cert_file=pki.client, key_file=pki.client_key
        )
        assert case.probe(config, url) == (0, "OK")
        case.emit(config, "with a client certificate")
        daemon = case.start(config)
        wait_for(lambda: read_lines(case.out) == ["with a client certificate"], what="the line")
        wait_for(lambda: len(tls_connections(mtls_broker.node)) == 1, what="one connection")
        [(ssl_on, subject)] = tls_connections(mtls_broker.node)
        assert ssl_on == "true"
        assert "CN=logfan-client" in subject, subject
        case.stop(daemon)
