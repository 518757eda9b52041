"""Real syslog receivers for the tests: syslog-ng and rsyslog in the foreground, a test CA."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
from logfan_testkit import REPO, wait_for

#: what syslog-ng writes for each message: its own parsed fields, one JSON object per line.
FIELDS_TEMPLATE = (
    "$(format-json --scope none facility=$FACILITY level=$LEVEL host=$HOST program=$PROGRAM"
    " pid=$PID msgid=$MSGID msg=$MSG stamp=$S_UNIXTIME --scope sdata)\\n"
)

# Each kind of source, by the name the tests use; {port}, {path} and {tls} are filled in.
_SOURCES = {
    "udp": 'syslog(ip("127.0.0.1") port({port}) transport("udp") so-rcvbuf(16777216))',
    "tcp": 'syslog(ip("127.0.0.1") port({port}) transport("tcp"))',
    "tcp-lf": 'network(ip("127.0.0.1") port({port}) transport("tcp") flags(syslog-protocol))',
    "tls": 'syslog(ip("127.0.0.1") port({port}) transport("tls") tls({tls}))',
    "unix-dgram": 'unix-dgram("{path}" flags(syslog-protocol) so-rcvbuf(16777216))',
    "unix-stream": 'unix-stream("{path}" flags(syslog-protocol))',
}


def free_port(kind: socket.SocketKind = socket.SOCK_STREAM) -> int:
    """A loopback port nobody uses right now."""
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def need(program: str, package: str) -> str:
    """The path of ``program``; fail (never skip) when it is not installed."""
    path = shutil.which(program, path="/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    if path is None:
        pytest.fail(f"{program} is not installed: `apt-get install {package}` (`make test` does)")
    return path


def _udp_bound(port: int) -> bool:
    wanted = f":{port:04X} "
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:
            continue
        if any(line.split()[1].endswith(wanted.strip()) for line in lines):
            return True
    return False


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


class SyslogNg:
    """One syslog-ng in the foreground with one source of ``kind``, writing ``out.jsonl``."""

    #: the receiver's name, in its folder's name
    NAME = "syslog-ng"

    def __init__(self, workdir: Path, kind: str, tls: dict[str, str] | None = None) -> None:
        self.binary = self.find_binary()
        self.dir = workdir / f"{self.NAME}-{kind}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.kind = kind
        self.port = free_port(socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
        self.path = str(self.dir / "log.sock")
        self.out = self.dir / "out.jsonl"
        self.log = self.dir / "syslog-ng.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.tls = tls or {}
        self.write_config()

    def find_binary(self) -> str:
        """The receiver's program."""
        return need("syslog-ng", "syslog-ng-core")

    @property
    def address(self) -> str:
        """Where the sink sends to reach this receiver."""
        scheme = {"udp": "udp", "tls": "tls"}.get(self.kind, "tcp")
        if self.kind.startswith("unix"):
            return f"unix://{self.path}"
        return f"{scheme}://127.0.0.1:{self.port}"

    def write_config(self) -> None:
        """Write the config for the current TLS settings."""
        tls = " ".join(f'{key}("{value}")' for key, value in self.tls.items())
        source = _SOURCES[self.kind].format(port=self.port, path=self.path, tls=tls)
        (self.dir / "syslog-ng.conf").write_text(
            "@version: 3.38\n"
            "options { keep-hostname(yes); use-dns(no); dns-cache(no); chain-hostnames(no);\n"
            "  log-msg-size(1048576); frac-digits(3); stats-freq(0); };\n"
            f"source s_in {{ {source}; }};\n"
            f'destination d_out {{ file("{self.out}" template("{FIELDS_TEMPLATE}")); }};\n'
            "log { source(s_in); destination(d_out); };\n"
        )

    def start(self) -> SyslogNg:
        """Start it and wait until its socket is there."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "-F",
                    "-e",
                    "--no-caps",
                    "-f",
                    str(self.dir / "syslog-ng.conf"),
                    "--persist-file",
                    str(self.dir / "persist"),
                    "--pidfile",
                    str(self.dir / "pid"),
                    "--control",
                    str(self.dir / "ctl"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        wait_for(self._ready, 30, what=f"syslog-ng to listen ({self.kind}); see {self.log}")
        return self

    def _ready(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"syslog-ng exited with {self.proc.returncode}: {self.log.read_text()}")
        if self.kind.startswith("unix"):
            return Path(self.path).exists()
        if self.kind == "udp":
            return _udp_bound(self.port)
        return _accepts(self.port)

    def stop(self) -> None:
        """Stop it (SIGTERM) and wait until it is gone."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def messages(self) -> list[dict[str, Any]]:
        """Every message written so far, as syslog-ng parsed it."""
        try:
            text = self.out.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        return [json.loads(line) for line in text.split("\n")[:-1]]


class TestCA:
    """A throwaway CA made with the openssl CLI, and certificates it signs."""

    __test__ = False  # not a pytest class

    def __init__(self, workdir: Path, name: str = "ca") -> None:
        self.openssl = need("openssl", "openssl")
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key = self.dir / "ca.key"
        self.cert = self.dir / "ca.pem"
        self._run(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2",
            "-subj", f"/CN=logfan test {name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip

    def _run(self, *args: str | Path) -> None:
        done = subprocess.run(
            [self.openssl, *map(str, args)], capture_output=True, check=False, timeout=60
        )
        if done.returncode != 0:
            pytest.fail(f"openssl {args[0]} failed: {done.stderr.decode(errors='replace')}")

    def issue(self, name: str, *, server: bool) -> tuple[Path, Path]:
        """A certificate and key for ``name`` (a server's: for localhost and 127.0.0.1)."""
        key, csr, cert = (self.dir / f"{name}.{ext}" for ext in ("key", "csr", "pem"))
        ext = self.dir / f"{name}.ext"
        usage = "serverAuth" if server else "clientAuth"
        alt = "subjectAltName=DNS:localhost,IP:127.0.0.1\n" if server else ""
        ext.write_text(f"{alt}extendedKeyUsage={usage}\nbasicConstraints=CA:FALSE\n")
        self._run(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", csr, "-subj", f"/CN={name}",
        )  # fmt: skip
        self._run(
            "x509", "-req", "-in", csr, "-CA", self.cert, "-CAkey", self.key,
            "-CAcreateserial", "-out", cert, "-days", "2", "-extfile", ext,
        )  # fmt: skip
        return cert, key


#: where `make test` unpacks Debian's rsyslog (it conflicts with syslog-ng-core as a package).
RSYSLOG_ROOT = REPO / ".venv" / "rsyslog"
_RSYSLOG_LIBS = RSYSLOG_ROOT / "usr" / "lib" / "x86_64-linux-gnu"

#: what rsyslog writes for each message: its own parsed fields as one JSON object per line.
RSYSLOG_TEMPLATE = """template(name="fields" type="list" option.jsonf="on") {
  property(outname="facility" name="syslogfacility-text" format="jsonf")
  property(outname="level" name="syslogseverity-text" format="jsonf")
  property(outname="host" name="hostname" format="jsonf")
  property(outname="program" name="app-name" format="jsonf")
  property(outname="pid" name="procid" format="jsonf")
  property(outname="msgid" name="msgid" format="jsonf")
  property(outname="msg" name="msg" format="jsonf")
  property(outname="stamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="sd" name="$!rfc5424-sd" format="jsonf")
}"""

# Each kind of input, as the docs give it; {port}, {path} and the TLS files are filled in.
RSYSLOG_INPUTS = {
    "udp": (
        'module(load="imudp")\n'
        'input(type="imudp" address="127.0.0.1" port="{port}" rcvbufSize="16m")'
    ),
    "tcp": 'module(load="imtcp")\ninput(type="imtcp" address="127.0.0.1" port="{port}")',
    "tcp-lf": 'module(load="imtcp")\ninput(type="imtcp" address="127.0.0.1" port="{port}")',
    "tls": (
        'global(defaultNetstreamDriverCAFile="{ca}" defaultNetstreamDriverCertFile="{cert}"\n'
        '       defaultNetstreamDriverKeyFile="{key}")\n'
        'module(load="imtcp" streamDriver.name="ossl" streamDriver.mode="1"\n'
        '       streamDriver.authMode="x509/certvalid")\n'
        'input(type="imtcp" address="127.0.0.1" port="{port}")'
    ),
    "unix-dgram": (
        'module(load="imuxsock" SysSock.Use="off")\ninput(type="imuxsock" Socket="{path}")'
    ),
}


class Rsyslog(SyslogNg):
    """One rsyslogd (unpacked by `make test`) in the foreground with one input of ``kind``."""

    NAME = "rsyslog"

    def find_binary(self) -> str:
        """rsyslogd as `make test` unpacked it; fail (never skip) when it is not there."""
        rsyslogd = RSYSLOG_ROOT / "usr" / "sbin" / "rsyslogd"
        if not rsyslogd.exists():
            pytest.fail(f"no rsyslogd under {RSYSLOG_ROOT}: `make test` unpacks Debian's rsyslog")
        return str(rsyslogd)

    def write_config(self) -> None:
        """Write rsyslog.conf: the input, structured data parsed (mmpstrucdata), one file."""
        (self.dir / "work").mkdir(exist_ok=True)
        source = RSYSLOG_INPUTS[self.kind].format(port=self.port, path=self.path, **self.tls)
        (self.dir / "rsyslog.conf").write_text(
            f'global(workDirectory="{self.dir / "work"}" maxMessageSize="1m")\n'
            f"{source}\n"
            'module(load="mmpstrucdata")\n'
            f"{RSYSLOG_TEMPLATE}\n"
            'action(type="mmpstrucdata")\n'
            f'action(type="omfile" file="{self.out}" template="fields")\n'
        )

    def start(self) -> Rsyslog:
        """Start it and wait until its socket is there."""
        env = {**os.environ, "LD_LIBRARY_PATH": str(_RSYSLOG_LIBS)}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    "-n",
                    "-f",
                    str(self.dir / "rsyslog.conf"),
                    "-i",
                    str(self.dir / "pid"),
                    "-M",
                    str(_RSYSLOG_LIBS / "rsyslog"),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )
        wait_for(self._ready, 30, what=f"rsyslog to listen ({self.kind}); see {self.log}")
        return self

    def messages(self) -> list[dict[str, Any]]:
        """Every message written so far, in the shape syslog-ng's are (see ``SyslogNg``)."""
        out = []
        for fields in super().messages():
            stamp = dt.datetime.fromisoformat(fields["stamp"].replace("Z", "+00:00"))
            sd = json.loads(fields["sd"]) if fields["sd"] else {}
            out.append(
                {
                    "facility": fields["facility"],
                    "level": fields["level"],
                    "host": fields["host"],
                    "program": fields["program"],
                    "pid": "" if fields["pid"] == "-" else fields["pid"],
                    "msgid": "" if fields["msgid"] == "-" else fields["msgid"],
                    "msg": fields["msg"],
                    "stamp": f"{stamp.timestamp():.3f}",
                    **({"_SDATA": sd} if sd else {}),
                }
            )
        return out
